"""Bench workloads declared in a crate's Cargo.toml: parsing, and their pure expansion into the
benchmark's scenarios (issue 9, section 6). Nothing here starts a process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.bench import load as loadgen
from kit.bench import plan, verdict
from kit.bench.variants import variants_from_records
from kit.core.errors import ConfigError
from kit.core.options import Options, describe, resolve_options
from kit.core.workloads import WALL_TIME, BenchWorkloads, CommandWorkload, param_value

TABLE = "[[package.metadata.static-rust-kit.bench-workloads"


def crate(tmp_path: Path, metadata: str) -> Path:
    (tmp_path / "Cargo.toml").write_text(
        '[package]\nname = "demo"\nversion = "0.1.0"\nedition = "2021"\n\n' + metadata
    )
    return tmp_path


def settings(**kw) -> plan.BenchSettings:
    return plan.resolve_settings(Options(root=Path("/p")), **kw)


def scenarios(workloads: BenchWorkloads, cores: int = 2, **kw) -> tuple[plan.Scenario, ...]:
    return plan.plan_scenarios(workloads, settings(**kw), cores, Path("/crate"))


def test_tables_in_cargo_toml_become_workloads_with_defaults(tmp_path):
    opts = resolve_options(
        crate(
            tmp_path,
            f"""{TABLE}.command]]
name = "compress"
argv = ["-9"]
stdin = "bench/input.txt"

{TABLE}.http]]
name = "api"
argv = ["--listen", "127.0.0.1:{{port}}"]
ready-path = "/ready"
""",
        )
    )
    w = opts.bench_workloads
    (cmd,), (http,) = w.command, w.http
    assert (cmd.name, cmd.argv, cmd.stdin, cmd.params, cmd.warmup) == (
        "compress",
        ("-9",),
        "bench/input.txt",
        {},
        0,
    )
    assert cmd.measure == WALL_TIME and cmd.timeout_s == 300.0 and cmd.control is False
    assert (http.method, http.path, http.body, http.connections) == ("GET", "/", None, ())
    assert http.ready_path == "/ready" and not http.control and not http.wrk_customised
    assert opts.sources["bench_workloads"].startswith("Cargo.toml")


def test_the_setting_round_trips_through_flags_and_shows_in_invoke_config(tmp_path):
    w = BenchWorkloads.model_validate(
        {
            "command": [
                {
                    "name": "s",
                    "argv": ["-t", "{threads}"],
                    "params": {"threads": [1, "2*nproc"]},
                    "metric": {"name": "rate", "regex": "r=(\\d+)", "better": "higher"},
                    "control": {"threads": 1},
                    "timeout-s": 20,
                }
            ],
            "http": [{"name": "h", "body": "{}", "headers": {"Content-Type": "x"}}],
        }
    )
    opts = Options(root=tmp_path, bench_workloads=w)
    again = resolve_options(tmp_path, flags=opts.as_flags())
    assert again.bench_workloads == w
    shown = dict((k, v) for k, v, _ in describe(opts))["bench-workloads"]
    assert json.loads(shown)["command"][0]["timeout-s"] == 20  # kebab-case, as written
    env = resolve_options(tmp_path, environ={"KIT_BENCH_WORKLOADS": json.dumps(w.as_config())})
    assert env.bench_workloads == w


@pytest.mark.parametrize(
    ("metadata", "needles"),
    [
        (
            f'{TABLE}.http]]\nname = "a"\nready_pat = "/x"\n',
            ["bench-workloads", "http.0.ready_pat: unknown key; perhaps you meant 'ready-path'"],
        ),
        (f'{TABLE}.comand]]\nname = "a"\n', ["comand", "perhaps you meant 'command'"]),
        (f'{TABLE}.http]]\nname = "a"\nconnections = [0]\n', ["connections.0", "greater than"]),
        (f'{TABLE}.http]]\nname = "a"\npath = "api"\n', ["path", "must start with '/'"]),
        (f'{TABLE}.http]]\nname = "a b"\n', ["name", "no spaces"]),
        (f'{TABLE}.http]]\nname = "a"\nmethod = "GE T"\n', ["not an HTTP method"]),
        (
            f'{TABLE}.http]]\nname = "a"\nargv = ["--port", "{{prot}}"]\n',
            ["{prot}", "known: {nproc}, {port}"],
        ),
        (
            f'{TABLE}.command]]\nname = "a"\nargv = ["{{threads}}"]\n',
            ["{threads}", "not a placeholder"],
        ),
        (f'{TABLE}.command]]\nname = "a"\nparams = {{ t = [] }}\n', ["'t' has no values"]),
        (f'{TABLE}.command]]\nname = "a"\nparams = {{ t = [1.5] }}\n', ["params.t"]),
        (f'{TABLE}.command]]\nname = "a"\nparams = {{ port = [1] }}\n', ["filled by the kit"]),
        (
            f'{TABLE}.command]]\nname = "a"\ncontrol = {{ threads = 1 }}\n',
            ["control names threads, not in params"],
        ),
        (
            f'{TABLE}.command]]\nname = "a"\n'
            'metric = { name = "m", regex = "(", better = "higher" }\n',
            ["not a valid regular expression"],
        ),
        (
            f'{TABLE}.command]]\nname = "a"\n'
            'metric = { name = "m", regex = "x", better = "up" }\n',
            ["metric.better", "'higher' or 'lower'"],
        ),
        (
            f'{TABLE}.command]]\nname = "a"\n'
            'metric = { name = "wall_s", regex = "x", better = "lower" }\n',
            ["the kit measures itself"],
        ),
        (
            f'{TABLE}.command]]\nname = "a"\n{TABLE}.http]]\nname = "a"\n',
            ["names must be unique: a"],
        ),
        (
            '[package.metadata.static-rust-kit.bench-workloads]\ndecide = "nope"\n'
            f'{TABLE}.command]]\nname = "a"\n',
            ["decide names 'nope'"],
        ),
    ],
)
def test_bad_tables_are_config_errors_naming_the_key(tmp_path, metadata, needles):
    with pytest.raises(ConfigError) as info:
        resolve_options(crate(tmp_path, metadata))
    assert info.value.exit_code == 2
    for needle in needles:
        assert needle in info.value.message


def test_params_expand_in_declared_order_with_nproc_resolved_and_keys_templated():
    w = CommandWorkload.model_validate(
        {
            "name": "stress",
            "key": "stress-{pattern}-t{threads}",
            "argv": ["--threads", "{threads}", "--pattern", "{pattern}", "-s", "{seconds}"],
            "params": {"pattern": ["local", "cross"], "threads": [1, 2, "2*nproc"]},
        }
    )
    assert w.expand(3) == [
        {"pattern": p, "threads": t} for p in ("local", "cross") for t in (1, 2, 6)
    ]
    assert w.expand(1)[:2] == [
        {"pattern": "local", "threads": 1},
        {"pattern": "local", "threads": 2},
    ]
    assert len(w.expand(1)) == 4  # 2 * 1 = 2 is already listed
    assert w.scenario_key({"pattern": "cross", "threads": 6}) == "stress-cross-t6"
    plain = CommandWorkload.model_validate({"name": "z", "params": {"level": [1, "nproc"]}})
    assert [plain.scenario_key(p) for p in plain.expand(4)] == ["z-1", "z-4"]
    assert param_value("nproc", 8) == 8 and param_value(" 3 * nproc ", 2) == 6
    assert param_value("fast", 8) == "fast" and param_value(5, 8) == 5


def test_scenarios_fill_placeholders_and_resolve_files_in_the_crate():
    w = BenchWorkloads.model_validate(
        {
            "command": [
                {
                    "name": "zip",
                    "argv": ["-l", "{level}", "-j", "{nproc}", "--for", "{seconds}", '{"a":1}'],
                    "params": {"level": [1, 9]},
                    "stdin": "data/in.txt",
                    "warmup": 2,
                    "control": {"level": 1},
                }
            ]
        }
    )
    first, last = scenarios(w, cores=4, quick=True)
    assert first.kind == "command" and first.key == "zip-1" and first.workload == "zip"
    assert first.command is not None
    assert first.command.argv == ("-l", "1", "-j", "4", "--for", "0.25", '{"a":1}')
    assert first.command.stdin == "/crate/data/in.txt" and first.command.regex is None
    assert first.measure == WALL_TIME and first.params == {"level": 1}
    assert first.control and not first.decides
    assert last.decides and not last.control  # the last non-control scenario decides
    assert plan.input_files([first, last]) == [Path("/crate/data/in.txt")]


def test_http_scenarios_one_per_connection_count():
    w = BenchWorkloads.model_validate(
        {
            "http": [
                {"name": "hi", "argv": ["-p", "{port}", "-w", "{nproc}"], "connections": [64, 8]},
                {"name": "post", "method": "post", "body": "x=1", "script": "wrk/auth.lua"},
            ]
        }
    )
    got = scenarios(w, connections=(16, 32))
    assert [s.key for s in got] == [
        "http-hi-c8",
        "http-hi-c64",
        "http-post-c16",
        "http-post-c32",
    ]
    assert got[0].http is not None and got[0].http.argv == ("-p", "{port}", "-w", "2")
    assert got[0].measure.name == "throughput_rps" and got[0].measure.higher_is_better
    assert [s.key for s in got if s.decides] == ["http-hi-c64"]
    post = got[2].http
    assert post is not None and post.method == "POST" and post.custom
    assert post.script == "/crate/wrk/auth.lua"


def test_the_decision_scenario_follows_decide_and_skips_controls():
    base = {
        "http": [{"name": "ctl", "control": True}, {"name": "api"}],
        "command": [{"name": "cli", "params": {"n": [1, 2]}}],
    }
    by_default = BenchWorkloads.model_validate(base)
    assert [s.key for s in scenarios(by_default) if s.decides] == ["http-api-c64"]
    chosen = BenchWorkloads.model_validate({**base, "decide": "cli"})
    assert [s.key for s in scenarios(chosen) if s.decides] == ["cli-2"]
    commands_only = BenchWorkloads.model_validate({"command": base["command"]})
    assert [s.key for s in scenarios(commands_only) if s.decides] == ["cli-2"]
    with pytest.raises(ConfigError, match="Every bench workload is a control"):
        scenarios(BenchWorkloads.model_validate({"http": [{"name": "ctl", "control": True}]}))
    with pytest.raises(ConfigError, match="whose scenarios are all controls"):
        scenarios(BenchWorkloads.model_validate({**base, "decide": "ctl"}))


def test_colliding_scenario_keys_are_a_config_error():
    w = BenchWorkloads.model_validate(
        {"command": [{"name": "a", "key": "same", "params": {"n": [1, 2]}}]}
    )
    with pytest.raises(ConfigError, match="several scenarios the key same"):
        scenarios(w)


def test_no_workloads_is_a_config_error_with_an_example(tmp_path):
    opts = resolve_options(crate(tmp_path, ""))
    with pytest.raises(ConfigError) as info:
        plan.plan_scenarios(opts.bench_workloads, settings(), 2, opts.manifest.parent)
    assert "No bench workloads are declared for the crate in" in info.value.message
    assert info.value.exit_code == 2
    assert "[[package.metadata.static-rust-kit.bench-workloads.command]]" in (info.value.hint or "")
    # the example in the hint is itself a valid declaration
    example = (info.value.hint or "").split("for example:\n", 1)[1]
    assert not resolve_options(crate(tmp_path, example)).bench_workloads.empty


def test_warmup_runs_come_first_and_are_never_measured_runs():
    from tests.unit.test_bench_report import PROJECT, build_record

    vs = variants_from_records([build_record("musl", "system")], PROJECT)
    w = BenchWorkloads.model_validate({"command": [{"name": "a", "warmup": 2}, {"name": "b"}]})
    runs = plan.schedule(vs, scenarios(w), 3, seed=0)
    assert [r.warmup for r in runs] == [True, True] + [False] * 6
    assert {r.scenario.key for r in runs if r.warmup} == {"a"}
    assert runs[0].label.endswith("a warm-up") and runs[2].label.endswith("#1")
    assert [r.order for r in runs] == list(range(8))


def test_wrk_gets_a_generated_script_only_beyond_a_plain_get(tmp_path):
    w = BenchWorkloads.model_validate(
        {
            "http": [
                {"name": "get", "path": "/x"},
                {
                    "name": "post",
                    "method": "post",
                    "body": 'say "hi"\n\u00e9',
                    "headers": {"Content-Type": "application/json"},
                    "script": "auth.lua",
                },
            ]
        }
    )
    get, post = scenarios(w)
    assert get.http is not None and post.http is not None
    assert loadgen.scenario_script(get.http, "get", tmp_path) == loadgen.REPORT_SCRIPT
    path = loadgen.scenario_script(post.http, "post", tmp_path)
    assert path == tmp_path / "post.lua"
    lua = path.read_text()
    assert 'wrk.method = "POST"' in lua
    assert 'wrk.body = "say \\034hi\\034\\010\\195\\169"' in lua
    assert 'wrk.headers["Content-Type"] = "application/json"' in lua
    assert lua.index('dofile("/crate/auth.lua")') < lua.index(str(loadgen.REPORT_SCRIPT))
    assert "crate_done(summary, latency, requests)" in lua  # the crate's own done() still runs


def test_lower_is_better_picks_the_fastest_and_orients_the_ratio():
    def cand(name, xs, rss=None, size=1):
        by_round = dict(enumerate(xs))
        return verdict.Candidate(name, name, "t", by_round, rss or {}, size)

    times = [1.00, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01]
    design = verdict.Design(margin=0.05, rss_margin=0.1, looks=1)
    d = verdict.decide(
        [cand("slow", [x * 2 for x in times]), cand("fast", times)], design, measure=WALL_TIME
    )
    assert d.choice.name == "fast" and d.outright
    assert d.comparisons[0].ratio.ratio == pytest.approx(2.0)  # the other takes twice the time
    assert "lowest median wall time (1 s)" in d.reason
    assert "(lower is better)" in d.rule
    assert d.as_dict()["medians"]["fast"]["wall_s"] == 1.0
    # no peak RSS sampled: equivalent, and the smaller binary ships
    unknown = [cand(n, times, size=size) for n, size in (("a", 2), ("b", 1))]
    tie = verdict.decide(unknown, design, measure=WALL_TIME)
    assert (
        tie.outcome == "equivalent" and tie.choice.name == "b" and "smallest binary" in tie.reason
    )


def test_instruction_counts_take_the_first_matching_fixed_work_argv():
    w = CommandWorkload.model_validate(
        {
            "name": "stress",
            "key": "stress-{pattern}-t{threads}",
            "argv": ["-t", "{threads}", "-p", "{pattern}", "-s", "{seconds}"],
            "params": {"pattern": ["local", "realloc"], "threads": [1, "nproc"]},
            "instructions": [
                {
                    "argv": ["-t", "1", "-p", "{pattern}", "--ops", "500"],
                    "when": {"pattern": "realloc", "threads": 1},
                },
                {"argv": ["-t", "1", "-p", "{pattern}", "--ops", "90000"], "when": {"threads": 1}},
            ],
        }
    )
    ws = BenchWorkloads(command=(w,))
    counts = {s.key: s.count.argv if s.count else None for s in scenarios(ws, cores=2)}
    assert counts == {
        "stress-local-t1": ("-t", "1", "-p", "local", "--ops", "90000"),
        "stress-local-t2": None,  # several threads: callgrind would serialise them
        "stress-realloc-t1": ("-t", "1", "-p", "realloc", "--ops", "500"),
        "stress-realloc-t2": None,
    }
    assert w.count_for({"pattern": "local", "threads": 2}, 2) is None
    counted = next(s for s in scenarios(ws, cores=2) if s.count)
    assert counted.count is not None and counted.count.regex is None  # the count is Ir itself


@pytest.mark.parametrize(
    ("instructions", "needles"),
    [
        ('[{ argv = ["--for", "{seconds}"] }]', ["{seconds}", "not a placeholder"]),
        ('[{ argv = ["x"], when = { level = 1 } }]', ["instructions.when names level"]),
        ("[{ when = { threads = 1 } }]", ["instructions.0.argv"]),
    ],
)
def test_bad_instruction_counts_are_config_errors(tmp_path, instructions, needles):
    table = (
        f'{TABLE}.command]]\nname = "a"\nparams = {{ threads = [1, 2] }}\n'
        f"instructions = {instructions}\n"
    )
    with pytest.raises(ConfigError) as info:
        resolve_options(crate(tmp_path, table))
    for needle in needles:
        assert needle in info.value.message
