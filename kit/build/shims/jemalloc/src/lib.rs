//! Empty: this crate exists so that cargo fetches (and, for jemalloc, builds) its pinned -sys dependency for the kit (kit/build/inject.py).
