"""One vLLM command line: what `plan` prints is what `serve` runs, for every model family the planner knows,
and every argv the workbench builds is one the installed vLLM's own argument parser accepts."""

import json
import shlex

import pytest

from workbench import cli
from workbench.errors import ConfigError
from workbench.measurement import tune_plan
from workbench.measurement.bench import Workload
from workbench.planner import gpu_plan, sweeps
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, models, vllm_flags
from workbench.serving.engine import EngineConfig
from workbench.serving.vllm_flags import ServeFlags

# A template line in each chat format, as the families' own templates write their turns.
_TEMPLATES = {
    "chatml": "{{ '<|im_start|>' + m.role }}",
    "llama3": "{{ '<|start_header_id|>' + m.role }}",
    "mistral": "{{ '[INST] ' + m.content }}",
    None: "{{ m.content }}",
}


def config_folder(tmp_path, spec: models.ModelSpec):
    """A checkpoint folder (config.json and a chat template, no weights) with the catalog entry's facts."""
    folder = tmp_path / spec.name
    folder.mkdir()
    config = {
        "model_type": spec.family,
        "num_hidden_layers": spec.num_layers,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "tie_word_embeddings": spec.tied_embeddings,
        "max_position_embeddings": spec.max_position_embeddings,
    }
    (folder / "config.json").write_text(json.dumps(config))
    fmt = spec.chat_format or vllm_flags.chat_format(spec.family)
    (folder / "chat_template.jinja").write_text(_TEMPLATES[fmt])
    return folder


@pytest.fixture(scope="module")
def vllm_parser():
    """vLLM's own `vllm serve` parser and its pre-start checks (vllm/entrypoints/launchers/cli_args.py)."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser())

    def parse(argv: list[str]):
        if argv[:2] == ["vllm", "serve"]:
            argv = argv[2:]
        elif "-m" in argv:
            argv = argv[argv.index("-m") + 2 :]
        args = parser.parse_args(argv)
        validate_parsed_serve_args(args)
        args.model = args.model_tag or args.model
        return args

    return parse


FAMILIES = sorted({(s.family, s.chat_format) for s in models.CATALOG.values()}, key=str)
SAME = (
    "model",
    "enable_auto_tool_choice",
    "tool_call_parser",
    "reasoning_parser",
    "max_model_len",
    "gpu_memory_utilization",
    "kv_cache_dtype",
    "max_num_seqs",
    "max_num_batched_tokens",
    "tensor_parallel_size",
)


@pytest.mark.parametrize("family, fmt", FAMILIES, ids=[f"{f}-{c}" for f, c in FAMILIES])
def test_plan_prints_what_serve_runs_for_every_family(tmp_path, capsys, vllm_parser, family, fmt):
    spec = next(s for s in models.CATALOG.values() if (s.family, s.chat_format) == (family, fmt))
    folder = config_folder(tmp_path, spec)
    common = [
        "--model",
        str(folder),
        "--max-model-len",
        "8192",
        "--gpu-memory-utilization",
        "0.9",
        "--kv-cache-dtype",
        "fp8",
        "--max-num-seqs",
        "8",
        "--max-num-batched-tokens",
        "4096",
        "--tensor-parallel-size",
        "2" if spec.num_kv_heads % 2 == 0 else "3",
    ]
    assert cli.main(["plan", *common, "--gpu", "RTX 4090", "--json"]) == 0
    planned = vllm_parser(json.loads(capsys.readouterr().out)["vllm_args"])
    wants = {"tool_call_parser": planned.tool_call_parser, "reasoning_parser": planned.reasoning_parser}
    serve = ["serve", "--print-command", "--device", "gpu", *common]
    serve += ["--enable-tools"] * bool(wants["tool_call_parser"]) + ["--enable-reasoning"] * bool(
        wants["reasoning_parser"]
    )
    assert cli.main(serve) == 0
    served = vllm_parser(shlex.split(capsys.readouterr().out))
    assert {k: getattr(served, k) for k in SAME} == {k: getattr(planned, k) for k in SAME}
    expected = vllm_flags.TOOL_PARSERS.get(fmt or vllm_flags.chat_format(family) or "")
    assert (planned.tool_call_parser or None) == expected  # vLLM's defaults are None and ""
    assert (planned.reasoning_parser or None) == ("qwen3" if family in ("qwen3", "qwen3_moe") else None)


def test_a_llama_folder_gets_llama3_json_from_plan_and_serve(tmp_path, capsys):
    folder = config_folder(tmp_path, models.CATALOG["Llama-3.1-8B"])
    assert cli.main(["serve", "--print-command", "--model", str(folder), "--enable-tools"]) == 0
    assert "--tool-call-parser llama3_json" in capsys.readouterr().out
    assert cli.main(["plan", "--model", str(folder)]) == 0
    assert "--tool-call-parser llama3_json" in capsys.readouterr().out


def test_the_bundled_model_is_chatml_so_hermes(capsys):
    """SmolLM2 is a Llama architecture with a ChatML template: the template decides, in plan and serve."""
    assert models.spec_from_folder(models.prepare_bundled_model()).chat_format == "chatml"
    assert cli.main(["serve", "--print-command", "--enable-tools"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("VLLM_CPU_KVCACHE_SPACE=1 python -m vllm.entrypoints.openai.api_server --model ")
    assert "--tool-call-parser hermes" in line and "--gpu-memory-utilization" not in line
    assert cli.main(["plan", "--model", models.BUNDLED_MODEL]) == 0
    assert "--tool-call-parser hermes" in capsys.readouterr().out


def test_every_parser_of_the_family_table_is_one_the_installed_vllm_has():
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    assert set(vllm_flags.TOOL_PARSERS.values()) <= set(ToolParserManager.list_registered())
    assert set(vllm_flags.REASONING_PARSERS.values()) <= set(ReasoningParserManager.list_registered())


def test_every_argv_the_workbench_builds_passes_vllms_own_parser(tmp_path, vllm_parser):
    qwen_folder = config_folder(tmp_path, models.CATALOG["Qwen3-14B"])
    engine = EngineConfig(
        model=str(qwen_folder),
        enable_tools=True,
        enable_reasoning=True,
        tensor_parallel_size=2,
        pipeline_parallel_size=2,
        distributed_executor_backend="ray",
        gpu_memory_utilization=0.9,
        kv_cache_dtype="fp8",
        max_num_seqs=8,
        max_num_batched_tokens=2048,
        dtype="bfloat16",
        enforce_eager=True,
    )
    argvs = [engine.resolve(port=8000, device=d).server_argv("python") for d in ("cpu", "gpu")]
    gpu = hardware.find_gpu("RTX 3090")
    for spec in models.CATALOG.values():
        for quant in ("bf16", "gptq-int4", "fp8"):
            argvs.append(list(gpu_plan.plan(spec, gpu, quant, ServeSettings(max_model_len=8192)).vllm_args))
    sweep = sweeps.sweep_parallel(
        models.CATALOG["Llama-3.1-70B"], gpu, "bf16", ServeSettings(max_model_len=16384), gpus_per_node=4
    )
    argvs += [list(row.vllm_args) for row in sweep.rows]
    bundled = models.find_model(models.BUNDLED_MODEL)
    for p in tune_plan.propose(bundled, Workload(16, 128, 32), 4):
        argvs.append(p.candidate.serve_line("/models/smol").split(" ", 1)[1].split())
    qwen = models.find_model("Qwen3-14B")
    for p in tune_plan.propose(qwen, Workload(8, 16_000, 1_000), 4, device="gpu", gpu=gpu, quant="gptq-int4"):
        argvs.append(shlex.split(p.candidate.serve_line("Qwen/Qwen3-14B-AWQ")))
    for argv in argvs:
        parsed = vllm_parser(argv)
        assert parsed.model, argv
    assert {a.count("--tool-call-parser") for a in argvs} == {0, 1}
    assert any("--distributed-executor-backend" in a for a in argvs)


def test_serve_flags_by_device():
    flags = ServeFlags(
        model="m",
        gpu_memory_utilization=0.925,
        tensor_parallel_size=2,
        cpu_kv_cache_gib=3,
        max_model_len=2048,
        device="gpu",
    )
    assert flags.args() == [
        "--max-model-len",
        "2048",
        "--gpu-memory-utilization",
        "0.925",
        "--tensor-parallel-size",
        "2",
    ]
    assert flags.env() == {} and flags.command().startswith("vllm serve m ")
    cpu = ServeFlags(
        model="m",
        gpu_memory_utilization=0.9,
        tensor_parallel_size=2,
        cpu_kv_cache_gib=3,
        max_model_len=2048,
        device="cpu",
    )
    assert cpu.args() == ["--max-model-len", "2048"]  # the GPU-only flags are left out on the CPU build
    assert (
        cpu.command() == "VLLM_CPU_KVCACHE_SPACE=3 python -m vllm.entrypoints.openai.api_server --model m "
        "--max-model-len 2048"
    )
    assert (
        ServeFlags(model="my model", gpu_memory_utilization=0.9).command()
        == "vllm serve 'my model' --gpu-memory-utilization 0.90"
    )
    slid = 0.5 + 42 * 0.01  # what a 0.01-step slider from 0.5 sends for 0.92: 0.9199999999999999
    assert ServeFlags(model="m", gpu_memory_utilization=slid).args() == ["--gpu-memory-utilization", "0.92"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(kv_cache_dtype="int3"), "kv_cache_dtype='int3' is not one of auto, fp8"),
        (dict(device="tpu"), "device='tpu' is not one of 'cpu', 'gpu'"),
        (dict(max_num_seqs=0), "max_num_seqs=0 must be at least 1"),
        (dict(gpu_memory_utilization=1.2), "gpu_memory_utilization=1.2 is outside (0, 1]"),
    ],
)
def test_bad_flags_are_refused_once_for_every_dataclass_that_extends_them(kwargs, words):
    for cls in (ServeFlags, EngineConfig, ServeSettings, tune_plan.Candidate):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            cls(**kwargs)


def test_parsers_by_family():
    assert vllm_flags.parsers("qwen3", None, tools=True, reasoning=True) == {
        "tool_call_parser": "hermes",
        "reasoning_parser": "qwen3",
    }
    assert vllm_flags.parsers("llama", "chatml", tools=True, reasoning=False)["tool_call_parser"] == "hermes"
    assert vllm_flags.parsers("llama", None, tools=True, reasoning=False)["tool_call_parser"] == "llama3_json"
    assert vllm_flags.parsers("deepseek_v2", None, tools=False, reasoning=False) == {
        "tool_call_parser": None,
        "reasoning_parser": None,
    }
    with pytest.raises(ConfigError, match="no tool parser is known for a 'deepseek_v2' model.*--tool-call-parser"):
        vllm_flags.parsers("deepseek_v2", None, tools=True, reasoning=False)
    assert (
        vllm_flags.parsers("deepseek_v2", None, True, False, tool_call_parser="deepseek_v3")["tool_call_parser"]
        == "deepseek_v3"
    )


def test_defaults_follow_the_model(tmp_path, capsys):
    """A family with a tool parser is served with tools on, Qwen3 with its reasoning parser too, unless --no-tools
    or --no-reasoning turn them off; a family without a parser is served without one, and no error."""
    qwen = config_folder(tmp_path, models.CATALOG["Qwen3-14B"])
    assert cli.main(["serve", "--print-command", "--model", str(qwen)]) == 0
    assert "--enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3" in capsys.readouterr().out
    assert cli.main(["serve", "--print-command", "--model", str(qwen), "--no-tools"]) == 0
    line = capsys.readouterr().out
    assert "--tool-call-parser" not in line and "--reasoning-parser qwen3" in line
    assert cli.main(["serve", "--print-command", "--model", str(qwen), "--no-reasoning"]) == 0
    line = capsys.readouterr().out
    assert "--tool-call-parser hermes" in line and "--reasoning-parser" not in line
    assert cli.main(["serve", "--print-command"]) == 0  # the bundled model: ChatML, so hermes; it does not think
    line = capsys.readouterr().out
    assert "--tool-call-parser hermes" in line and "--reasoning-parser" not in line
    assert vllm_flags.parsers("deepseek_v2", None) == {"tool_call_parser": None, "reasoning_parser": None}
    assert vllm_flags.parsers("qwen3", None, tools=False, reasoning=False) == {
        "tool_call_parser": None,
        "reasoning_parser": None,
    }


# -- the flags' one declaration ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_serve_options():
    """The options of the installed vLLM's own `vllm serve` parser, by option string."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())._option_string_actions


def test_every_declared_flag_is_vllms_with_its_values_and_its_default(vllm_serve_options):
    """What SERVE_FLAGS says of vLLM holds for the installed vLLM: the flag exists, the values offered are values it
    takes, and its default is the one declared for this release."""
    version = hardware.package_version(hardware.vllm_build())
    for flag in vllm_flags.SERVE_FLAGS:
        if flag.own:
            assert flag.name not in vllm_serve_options, f"{flag.name} is vLLM's now: declare it as such"
            continue
        theirs = vllm_serve_options.get(flag.name)
        assert theirs is not None, f"the installed vLLM {version} has no {flag.name}"
        if flag.choices and theirs.choices is not None:
            assert set(flag.choices) <= set(theirs.choices), flag.name
        assert flag.vllm_default_in(version) == theirs.default, (flag.name, theirs.default)


def test_batch_defaults_follow_vllms_per_device_table():
    assert vllm_flags.batch_defaults("cpu") == (2048, 128)
    assert vllm_flags.batch_defaults("gpu", hardware.find_gpu("RTX 3090")) == (2048, 256)
    assert vllm_flags.batch_defaults("gpu", hardware.find_gpu("H100 80GB")) == (8192, 1024)
    assert vllm_flags.batch_defaults("gpu", hardware.find_gpu("A100 80GB")) == (2048, 256)
    assert vllm_flags.batch_defaults("gpu", hardware.find_gpu("B200")) == (16384, 1024)


def test_the_argv_of_every_declared_flag_passes_vllms_parser(tmp_path, vllm_parser):
    """`serve --print-command` with every valued flag given prints a line vLLM's parser reads back the same."""
    folder = config_folder(tmp_path, models.CATALOG["Qwen3-14B"])
    given = {
        "--served-model-name": "qwen",
        "--port": "8001",
        "--max-model-len": "8192",
        "--dtype": "bfloat16",
        "--quantization": "fp8",
        "--kv-cache-dtype": "fp8",
        "--gpu-memory-utilization": "0.85",
        "--tensor-parallel-size": "2",
        "--pipeline-parallel-size": "2",
        "--distributed-executor-backend": "ray",
        "--max-num-seqs": "8",
        "--max-num-batched-tokens": "4096",
        "--tool-call-parser": "hermes",
        "--reasoning-parser": "qwen3",
    }
    assert set(given) | {"--host"} == {name for name, _, _ in vllm_flags.FLAGS}  # a new flag gets a value here
    argv = [a for pair in given.items() for a in pair]
    config = cli.engine_config_from_args(cli.build_parser().parse_args(["serve", "--model", str(folder), *argv]))
    parsed = vllm_parser(config.resolve(device="gpu").server_argv())
    for flag, value in given.items():
        assert str(getattr(parsed, flag[2:].replace("-", "_"))) in (value, f"['{value}']"), flag  # served name: a list


def _option(command: str, dest: str):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return next(a for a in sub.choices[command]._actions if a.dest == dest)


def test_each_command_builds_its_serve_flags_from_the_declaration():
    """No command declares a serve flag of its own: each option named as one carries the declaration's help, type
    of values and choices; the defaults are the command's dataclass's, and where one is not vLLM's the help says
    why (plan asks at the reference case's context, serve at one this CPU serves briskly)."""
    from workbench.planner import ServeSettings

    names = {n: f for f in vllm_flags.SERVE_FLAGS for n in (f.name, *f.aliases)}
    seen = set()
    for command, sub in next(a for a in cli.build_parser()._actions if a.dest == "command").choices.items():
        for action in sub._actions:
            flag = next((names[o] for o in action.option_strings if o in names), None)
            if flag is None or (command in ("chat", "eval-ppl") and action.dest == "model"):  # asks a server for one
                continue
            seen.add(command)
            assert flag.help in action.help, (command, flag.name)
            assert tuple(action.choices or ()) == flag.choices, (command, flag.name)
    assert {"serve", "ui", "plan", "tune", "compare", "quantize", "download"} <= seen
    assert _option("serve", "max_model_len").default == EngineConfig().max_model_len == 4096
    assert _option("plan", "max_model_len").default == ServeSettings().max_model_len == 32_768
    assert "the reference case's context" in _option("plan", "max_model_len").help
    assert _option("compare", "max_model_len").default == 4096
    assert _option("serve", "kv_cache_dtype").default == _option("plan", "kv_cache_dtype").default == "auto"
    assert "default: vLLM's, 0.92 (0.90 before v0.21)" in _option("plan", "gpu_memory_utilization").help
    with pytest.raises(AssertionError, match="--max-model-len defaults to 1024 here.*say why"):
        cli._serve_flags(cli.argparse.ArgumentParser(), ("max_model_len",), {"max_model_len": 1024})
