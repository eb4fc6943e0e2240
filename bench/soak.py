"""Soak: random networks compiled and run bit-exactly on the simulated accelerator, with wait states.

    python -m bench.soak --networks 200 --seed 1 --configs tiny,small25 --images 3 --wait-states 192 \\
        --json build/soak.json

Network ``i`` has the seed ``seed + i`` and runs on configuration ``configs[seed % len(configs)]``.
Its generator parameters (``model.random_deploy.random_deploy``) are drawn from that seed and shaped
to the configuration (:func:`network_parameters`): the first layer kind (``embed`` with its ``d`` and
``q``, ``raw_input``, ``host_conv``), image channels and sizes up to the largest the configuration's
code banks hold, conv kernels (1..7), strides (1..3), paddings, widths, residuals, pools, int-map
outputs, class counts; and the compiler's options (weight streaming, the EMBED window mode,
embeddings split over table channels). A network the compiler refuses (``CompileError``) is counted
as refused, not as a failure.

Each network that compiles runs ``--images`` random images through

- the golden model (``model.golden``): the expected integer logits;
- the reference simulator (``firmware.refsim.run_compiled``): must equal them bit for bit;
- the compiled simulator of ``accel.soc.SoC(config, fault_injection=True)`` through
  ``firmware.driver.Accelerator``: each image with random wait states at the memory port
  (``accel.fault_injector``: a stall probability up to ``--wait-states``/256 and an LFSR seed, both
  drawn per image), sometimes with the parameters reloaded; must equal them bit for bit. A run
  that raises no interrupt within the driver's cycle budget is a hang; one that reports an error
  is an error. An exception anywhere else (the compiler, the golden model) is a crash.

``--contract-options`` also generates the deploy fields the compiler does not implement yet
(``in_gain``, ``in_offset``, head ``k``): those networks compile to wrong results or crash the
compiler, which this option keeps reproducible until it does.

The simulator of each configuration is built once and cached under ``build/cxxrtl`` (minutes the
first time). The accelerator is not reset between networks, so state left by one network would show
up in the next one. Any failure prints the seed and a command that reruns it alone
(``--only-seed``). Results: one summary line, ``--json PATH`` for the details; exit status 1 when a
mismatch, hang or error was found, 2 on bad arguments.
"""

import argparse
import asyncio
import collections
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["network_parameters", "largest_image_side", "SoakResult", "Soak", "soak", "main"]

# A run is a hang when it raises no interrupt within this many cycles plus HANG_FACTOR times the
# reference simulator's ideal cycles of the parameter-loading program (wait states at most double a
# run at the default --wait-states; the factor leaves room for far more).
HANG_BASE_CYCLES = 2_000_000
HANG_FACTOR = 64
DEFAULT_CONFIGS = ("tiny", "small25")
# What the sample in tests/test_soak.py must cover: every first-layer kind, the layer options and the
# compiler's options (keys of ``SoakResult.coverage``).
COVERAGE_KEYS = ("first:embed", "first:raw_input", "first:host_conv", "embed:d>1", "embed:q=1",
                 "embed:q=2", "embed:window_mode", "embed:table_split", "conv:k=1", "conv:k=3",
                 "conv:k>3", "conv:k=2",
                 "conv:stride=1", "conv:stride=2", "conv:stride=3", "conv:pad=0", "conv:pad<k//2",
                 "conv:pad>0", "conv:in_bits=8", "conv:in_bits=1", "conv:in_bits=2", "conv:q=1",
                 "conv:q=2", "conv:residual", "conv:pool", "conv:acc", "conv:acc+codes",
                 "conv:branch", "conv:cin>p_i", "conv:cout>p_o", "head:classes>p_o",
                 "image:largest", "image:channels>1", "compile:stream_weights", "compile:no_im2col",
                 "run:wait_states", "run:reload_params")


def largest_image_side(config, first, channels, d=1):
    """Side of the largest square image whose first code map fits one code bank of ``config``.

    ``first`` is the first layer kind; ``d`` the embedding dimension (``embed``). A ``host_conv``
    map is counted at ``p_i`` channels of 2-bit codes.
    """
    if first == "raw_input":
        groups, nsub = math.ceil(channels / config.p_i), math.ceil(8 / config.a_planes)
    elif first == "embed":
        groups, nsub = math.ceil(channels * d / config.p_i), 1
    else:
        groups, nsub = 1, 1
    return min(int(math.isqrt(config.bank_depth // (groups * nsub))), 1023)


def network_parameters(seed, config, contract_options=False):
    """The ``random_deploy`` keyword arguments, compile options and run options of network ``seed``.

    ``contract_options`` adds the deploy fields the compiler does not implement yet (``in_gain``,
    ``in_offset``, head ``k``; docs/ARCHITECTURE.md section 2): networks that use them fail.

    Returns
    -------
    generator : dict
        Keyword arguments for ``random_deploy(seed, hardware=True, **generator)``.
    compile_options : dict
        Keyword arguments for ``compile_model`` (``stream_weights``, ``im2col``).
    largest : bool
        The image is the largest of its kind that fits a code bank.
    """
    rng = np.random.default_rng([int(seed), 0x50A4])
    first = str(rng.choice(["embed", "embed", "raw_input", "host_conv"]))
    channels = int(rng.integers(1, min(3, config.emb_channels) + 1))
    # C * d <= p_i: the embedded map is one code group
    max_embed_d = max(1, config.p_i // channels)
    largest = rng.random() < 0.15
    side_max = largest_image_side(config, first, channels, max_embed_d)
    if largest:
        height = width = side_max
    elif rng.random() < 0.75:
        height, width = (int(v) for v in rng.integers(3, 13, size=2))
    else:
        height, width = (int(v) for v in rng.integers(3, max(4, side_max // 2) + 1, size=2))
    kernel_choices = [(1, 3), (1, 3), (1, 2, 3, 5), (1, 3, 5, 7)][int(rng.integers(4))]
    stride_choices = [(1, 2), (1, 1, 2), (1, 2, 3)][int(rng.integers(3))]
    p_i, p_o = config.p_i, config.p_o
    if largest:
        # large maps: narrow layers (one code group) and few int maps, so that they fit the banks
        chan_choices = (p_i // 2, p_i)
        acc_probability, max_convs = 0.1, int(rng.integers(2, 5))
        stride_choices = (1, 2, 2)
    else:
        chan_choices = tuple(sorted({4, p_i // 2, p_i, p_o, p_o + p_i // 2, 2 * p_o, 3 * p_i}))
        acc_probability, max_convs = float(rng.choice([0.3, 0.5, 0.7])), int(rng.integers(1, 7))
    classes = int(rng.choice([2, 4, 10, p_o + 3])) if rng.random() < 0.8 else int(rng.integers(2, 40))
    generator = dict(channels=channels, height=height, width=width, first=first,
                     num_classes=classes, max_convs=max_convs, chan_choices=chan_choices,
                     kernel_choices=kernel_choices, stride_choices=stride_choices,
                     random_pad=bool(rng.random() < 0.5), max_embed_d=max_embed_d,
                     residual_probability=float(rng.choice([0.3, 0.6, 0.9])),
                     pool_probability=float(rng.choice([0.2, 0.5])),
                     acc_probability=acc_probability,
                     # a stream of its own, so that the other draws of a seed stay as they were
                     wide_embed=bool(np.random.default_rng([int(seed), 0x51D]).random() < 0.5))
    if contract_options:
        generator.update(input_maps=True, head_kernel=True)
    compile_options = dict(stream_weights=bool(rng.random() < 0.2), im2col=bool(rng.random() < 0.85))
    return generator, compile_options, bool(largest)


def network_coverage(deploy, compiled, compile_options, largest):
    """The ``COVERAGE_KEYS`` (and more) that one compiled network exercises."""
    config = compiled.config
    keys = {f"first:{deploy.layers[0]['kind']}"}
    if largest:
        keys.add("image:largest")
    if deploy.input_shape[0] > 1:
        keys.add("image:channels>1")
    if compile_options["stream_weights"]:
        keys.add("compile:stream_weights")
    if not compile_options["im2col"]:
        keys.add("compile:no_im2col")
    previous_codes = deploy.layers[0]["outputs"].get("codes")
    for layer in deploy.layers:
        kind = layer["kind"]
        if kind == "embed":
            keys.add(f"embed:q={layer['q']}")
            if layer["d"] > 1:
                keys.add("embed:d>1")
        elif kind == "conv":
            k, stride, pad = layer["k"], layer["stride"], layer["pad"]
            keys.update({f"conv:k={k}" if k <= 3 else "conv:k>3", f"conv:stride={stride}",
                         f"conv:in_bits={layer['in_bits']}"})
            keys.add("conv:pad=0" if pad == 0 else "conv:pad>0")
            if pad < k // 2:
                keys.add("conv:pad<k//2")
            if layer["q"] is not None:
                keys.add(f"conv:q={layer['q']}")
            outputs = layer["outputs"]
            if outputs["acc"]:
                keys.add("conv:acc+codes" if outputs["codes"] else "conv:acc")
            if layer["residual"]:
                keys.add("conv:residual")
            if layer["pool"]:
                keys.add("conv:pool")
            if layer["input"] != previous_codes:
                keys.add("conv:branch")
            if layer["cin"] > config.p_i:
                keys.add("conv:cin>p_i")
            if layer["cout"] > config.p_o:
                keys.add("conv:cout>p_o")
            if outputs["codes"]:
                previous_codes = outputs["codes"]
        elif kind == "head" and layer["classes"] > config.p_o:
            keys.add("head:classes>p_o")
    if any(getattr(t, "window", None) for t in compiled.tensors.values()):
        keys.add("embed:window_mode")
    if compiled.image_repeat > 1:
        keys.add("embed:table_split")
    return keys


class SoakResult:
    """Counts and findings of a soak (``as_dict`` for the JSON file, ``summary`` for one line)."""

    def __init__(self, seed, networks, configs, images, wait_states, contract_options=False):
        self.seed, self.networks_asked, self.configs = seed, networks, list(configs)
        self.contract_options = bool(contract_options)
        self.images_per_network, self.wait_states = images, wait_states
        self.counts = collections.Counter()
        self.per_config = {name: collections.Counter() for name in configs}
        self.refused_reasons = collections.Counter()
        self.coverage = collections.Counter()
        self.failures = []
        self.cycles = 0
        self.wall_s = 0.0

    @property
    def first_failing_seed(self):
        return min((f["seed"] for f in self.failures), default=None)

    def rerun_command(self, seed):
        return (f"python -m bench.soak --only-seed {seed} --configs {','.join(self.configs)} "
                f"--images {self.images_per_network} --wait-states {self.wait_states}"
                + (" --contract-options" if self.contract_options else ""))

    def add_failure(self, seed, config_name, kind, message):
        self.counts[kind] += 1
        self.per_config[config_name][kind] += 1
        self.failures.append({"seed": seed, "config": config_name, "kind": kind,
                              "message": message, "rerun": self.rerun_command(seed)})

    def as_dict(self):
        first = self.first_failing_seed
        return {
            "seed": self.seed, "networks_asked": self.networks_asked, "configs": self.configs,
            "images_per_network": self.images_per_network, "wait_states": self.wait_states,
            "contract_options": self.contract_options,
            "networks": self.counts["networks"], "refused": self.counts["refused"],
            "compiled": self.counts["compiled"], "images": self.counts["images"],
            "cycles_simulated": self.cycles, "mismatches": self.counts["mismatch"],
            "refsim_mismatches": self.counts["refsim_mismatch"], "hangs": self.counts["hang"],
            "errors": self.counts["error"], "crashes": self.counts["crash"],
            "wall_s": round(self.wall_s, 1),
            "first_failing_seed": first,
            "first_failing_rerun": self.rerun_command(first) if first is not None else None,
            "per_config": {k: dict(v) for k, v in self.per_config.items()},
            "refused_reasons": dict(self.refused_reasons.most_common()),
            "coverage": dict(sorted(self.coverage.items())),
            "missing_coverage": [k for k in COVERAGE_KEYS if not self.coverage[k]],
            "failures": self.failures,
        }

    @property
    def failed(self):
        return bool(self.failures)

    def summary(self):
        first = self.first_failing_seed
        return (f"soak: {self.counts['networks']} networks ({self.counts['refused']} refused) on "
                f"{','.join(self.configs)}, {self.counts['images']} images, "
                f"{self.cycles / 1e6:.1f} M cycles simulated, {self.counts['mismatch']} mismatches, "
                f"{self.counts['refsim_mismatch']} reference-simulator mismatches, "
                f"{self.counts['hang']} hangs, {self.counts['error']} errors, "
                f"{self.counts['crash']} crashes, {self.wall_s:.0f} s; "
                f"first failing seed: {'none' if first is None else first}")


def _refusal_reason(message):
    """A compiler refusal without its layer name and numbers, for counting reasons."""
    why = message.split(": ", 1)[-1]
    return "".join("#" if c.isdigit() else c for c in why).split(" (")[0][:70]


class _FaultSoCTransport:
    """The compiled simulator of ``SoC(config, fault_injection=True)``, cached like
    ``CxxrtlTransport``'s SoC builds: keyed by the design sources, so that a cached build loads
    without elaborating the SoC."""

    def __new__(cls, config, backend="cxxrtl"):
        from accel.soc import SoC
        from firmware import cxxrtl_sim
        from firmware.fast_models import use_fast_models
        digest = hashlib.sha256(
            (cxxrtl_sim.design_key(config, backend=backend) + " fault_injection").encode()).hexdigest()
        key = f"{backend}-faultsoc-{digest[:20]}"
        cached = cxxrtl_sim.cached_metadata(key)
        if cached is None:
            soc = SoC(config, fault_injection=True)
            replaced = use_fast_models(soc)
            lib = cxxrtl_sim.build(soc, backend=backend, key=key,
                                   metadata={"fast_models": replaced, "config": repr(config),
                                             "fault_injection": True})
        else:
            lib = cached[0]
        transport = cxxrtl_sim.CxxrtlTransport.__new__(cxxrtl_sim.CxxrtlTransport)
        transport.backend, transport.lib_path = backend, lib
        transport.fast_models = ["mac_array"]
        transport.sim = cxxrtl_sim.CxxrtlSim(lib)
        return transport


class Soak:
    """Runs networks one at a time; keeps one compiled simulator per configuration.

    Parameters
    ----------
    configs : sequence of str
        Names in ``contract.config.CONFIGS``.
    images : int
        Images per network.
    wait_states : int
        Largest stall probability (0..255, in 256ths) drawn per image; 0 runs without wait states.
    backend : str
        ``"cxxrtl"`` or ``"verilator"``.
    refsim : bool
        Also run the reference simulator against the golden model.
    contract_options : bool
        Also generate the deploy fields the compiler does not implement yet (see
        :func:`network_parameters`).
    hardware : bool
        Run the compiled simulator (False: the golden model and the reference simulator only, for
        configurations without a simulator build).
    """

    def __init__(self, configs=DEFAULT_CONFIGS, *, images=2, wait_states=192, backend="cxxrtl",
                 refsim=True, contract_options=False, hardware=True):
        from contract.config import CONFIGS
        configs = list(configs)
        if not configs:
            raise ValueError("no configuration given")
        for name in configs:
            if name not in CONFIGS:
                raise ValueError(f"unknown configuration {name!r} (one of {', '.join(CONFIGS)})")
        if not isinstance(images, int) or images < 1:
            raise ValueError(f"images must be a positive integer, not {images!r}")
        if not isinstance(wait_states, int) or not 0 <= wait_states <= 255:
            raise ValueError(f"wait_states must be 0..255, not {wait_states!r}")
        self.configs, self.images, self.wait_states = configs, images, wait_states
        self.backend, self.refsim = backend, bool(refsim)
        self.contract_options = bool(contract_options)
        self.hardware = bool(hardware)
        if not (self.refsim or self.hardware):
            raise ValueError("nothing to run: neither the reference simulator nor the hardware")
        self._transports = {}

    def config_of(self, seed):
        return self.configs[seed % len(self.configs)]

    def transport(self, name):
        if name not in self._transports:
            from contract.config import CONFIGS
            self._transports[name] = _FaultSoCTransport(CONFIGS[name], self.backend)
        return self._transports[name]

    def run_network(self, seed, result):
        """Generate, compile and run network ``seed``; record it in ``result``. An exception other
        than a compiler refusal (a crash of the compiler, the golden model or a simulator) is
        recorded as a failure of kind ``crash``."""
        try:
            self._run_network(seed, result)
        except Exception as exc:
            result.add_failure(seed, self.config_of(seed), "crash", f"{type(exc).__name__}: {exc}")
            for transport in self._transports.values():
                transport.sim.reset()

    def _run_network(self, seed, result):
        from contract.config import CONFIGS
        from firmware.compiler import CompileError, compile_model
        from firmware.refsim import run_compiled
        from model import golden
        from model.random_deploy import random_deploy

        name = self.config_of(seed)
        config = CONFIGS[name]
        generator, compile_options, largest = network_parameters(seed, config,
                                                                 self.contract_options)
        result.counts["networks"] += 1
        result.per_config[name]["networks"] += 1
        deploy = random_deploy(seed, hardware=True, **generator)
        try:
            compiled = compile_model(deploy, config, **compile_options)
        except CompileError as exc:
            result.counts["refused"] += 1
            result.per_config[name]["refused"] += 1
            result.refused_reasons[_refusal_reason(str(exc))] += 1
            return
        result.counts["compiled"] += 1
        coverage = network_coverage(deploy, compiled, compile_options, largest)
        rng = np.random.default_rng([int(seed), 0x1A6E])
        images = rng.integers(0, 256, size=(self.images, *deploy.input_shape), dtype=np.uint8)
        expected = golden.run(deploy, images, keep_tensors=False).logits_int
        load_cycles = 0
        if self.refsim:
            try:
                logits, runs, _ = run_compiled(compiled, images)
            except RuntimeError as exc:
                result.add_failure(seed, name, "refsim_mismatch", f"reference simulator: {exc}")
                return
            load_cycles = runs[0].cycles
            bad = [i for i in range(len(images)) if not np.array_equal(logits[i], expected[i])]
            if bad:
                result.add_failure(seed, name, "refsim_mismatch",
                                   f"reference simulator: image {bad[0]} logits {logits[bad[0]].tolist()}, "
                                   f"golden {expected[bad[0]].tolist()}")
                return
        if not self.hardware:
            result.counts["images"] += len(images)
            result.per_config[name]["images"] += len(images)
            result.coverage.update(coverage)
            return
        asyncio.run(self._run_hardware(seed, name, compiled, images, expected, load_cycles,
                                       coverage, result))

    async def _run_hardware(self, seed, name, compiled, images, expected, load_cycles, coverage,
                            result):
        from accel.soc import FAULTS_BASE_WORD
        from firmware.driver import Accelerator, AcceleratorError

        transport = self.transport(name)
        rng = np.random.default_rng([int(seed), 0x3A17])
        budget = HANG_BASE_CYCLES + HANG_FACTOR * load_cycles
        accelerator = Accelerator(transport, timeout_cycles=budget)
        start_cycles = transport.cycles

        def restart():
            """Count the cycles so far, then give the next network a fresh accelerator."""
            nonlocal start_cycles
            result.cycles += transport.cycles - start_cycles
            transport.sim.reset()
            start_cycles = transport.cycles

        try:
            await transport.write_words(FAULTS_BASE_WORD, [0, 0, 0])
            await accelerator.identify()
            await accelerator.load(compiled)
            for index, image in enumerate(images):
                wait = int(rng.integers(0, self.wait_states + 1)) if self.wait_states else 0
                lfsr_seed = int(rng.integers(1, 1 << 16))
                reload = index > 0 and rng.random() < 0.3
                await transport.write_words(FAULTS_BASE_WORD, [wait | (lfsr_seed << 16)])
                try:
                    run = await accelerator.run_image(image, compiled, profile=False,
                                                      reload_params=reload)
                finally:
                    await transport.write_words(FAULTS_BASE_WORD, [0])
                result.counts["images"] += 1
                result.per_config[name]["images"] += 1
                if wait:
                    coverage.add("run:wait_states")
                if reload:
                    coverage.add("run:reload_params")
                if run.logits_int != [int(v) for v in expected[index]]:
                    result.add_failure(seed, name, "mismatch",
                                       f"image {index} (wait {wait}/256, LFSR seed {lfsr_seed}): "
                                       f"logits {run.logits_int}, golden {expected[index].tolist()}")
                    restart()
                    return
        except AcceleratorError as exc:
            kind = "hang" if "timeout" in str(exc) else "error"
            result.add_failure(seed, name, kind, str(exc))
            restart()
            return
        finally:
            result.cycles += transport.cycles - start_cycles
        result.coverage.update(coverage)

    def close(self):
        for transport in self._transports.values():
            transport.sim.close()
        self._transports.clear()


def soak(seeds, *, configs=DEFAULT_CONFIGS, images=2, wait_states=192, backend="cxxrtl",
         refsim=True, contract_options=False, hardware=True, progress=True, json_path=None,
         base_seed=None):
    """Run the networks ``seeds``; returns a :class:`SoakResult`.

    With ``json_path`` the results are written there every 30 s and at the end, so that a long
    soak stopped early leaves what it found.
    """
    from tqdm import tqdm

    seeds = list(seeds)
    runner = Soak(configs, images=images, wait_states=wait_states, backend=backend, refsim=refsim,
                  contract_options=contract_options, hardware=hardware)
    result = SoakResult(seeds[0] if base_seed is None and seeds else base_seed, len(seeds),
                        runner.configs, images, wait_states, contract_options)
    for name in runner.configs if hardware else ():
        runner.transport(name)     # builds (or loads) every simulator before the clock starts
    start = time.monotonic()
    bar = tqdm(seeds, desc="soak", unit="net", disable=not progress, file=sys.stderr,
               mininterval=1.0)
    last_write = 0.0
    try:
        for seed in bar:
            runner.run_network(seed, result)
            result.wall_s = time.monotonic() - start
            bar.set_postfix(refused=result.counts["refused"], images=result.counts["images"],
                            fail=len(result.failures), refresh=False)
            if json_path and (time.monotonic() - last_write > 30 or seed == seeds[-1]):
                _write_json(json_path, result)
                last_write = time.monotonic()
    finally:
        bar.close()
        runner.close()
        result.wall_s = time.monotonic() - start
        if json_path:
            _write_json(json_path, result)
    return result


def _write_json(path, result):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result.as_dict(), indent=1) + "\n")
    tmp.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=100, help="networks to run (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first network (default 0)")
    parser.add_argument("--only-seed", type=int, default=None, metavar="S",
                        help="run network S alone (as reported for a failure)")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                        help=f"configurations, comma-separated (default {','.join(DEFAULT_CONFIGS)})")
    parser.add_argument("--images", type=int, default=2, help="images per network (default 2)")
    parser.add_argument("--wait-states", type=int, default=192, metavar="P",
                        help="largest stall probability in 256ths, drawn per image (0..255, default 192)")
    parser.add_argument("--backend", choices=("cxxrtl", "verilator"), default="cxxrtl")
    parser.add_argument("--no-refsim", action="store_true", help="skip the reference simulator")
    parser.add_argument("--refsim-only", action="store_true",
                        help="no compiled simulator: golden model against the reference simulator only")
    parser.add_argument("--contract-options", action="store_true",
                        help="also generate in_gain/in_offset and head k, which the compiler does "
                             "not implement yet (expect failures)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.networks < 1:
        parser.error(f"--networks must be positive, not {args.networks}")
    if args.seed < 0 or (args.only_seed is not None and args.only_seed < 0):
        parser.error("seeds must be non-negative")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    seeds = [args.only_seed] if args.only_seed is not None else range(args.seed, args.seed + args.networks)
    try:
        Soak(configs, images=args.images, wait_states=args.wait_states,
             refsim=not args.no_refsim, hardware=not args.refsim_only)
    except ValueError as exc:
        parser.error(str(exc))
    result = soak(seeds, configs=configs, images=args.images, wait_states=args.wait_states,
                  backend=args.backend, refsim=not args.no_refsim,
                  contract_options=args.contract_options, hardware=not args.refsim_only,
                  progress=not args.quiet,
                  json_path=args.json, base_seed=args.seed if args.only_seed is None else args.only_seed)
    for failure in result.failures[:20]:
        print(f"FAIL seed {failure['seed']} ({failure['config']}, {failure['kind']}): "
              f"{failure['message']}\n  rerun: {failure['rerun']}", file=sys.stderr)
    print(result.summary())
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
