"""`rnnkit export RUN --format onnx|torchscript [--quantize int8] [--out DIR]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnkit.errors import ConfigError

FORMATS = ("onnx", "torchscript")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a run to ONNX or TorchScript, with a parity report",
        description="Write the run's model as ONNX (dynamic batch and length, recurrent state "
        "as inputs and outputs) or TorchScript, with its tokenizer or scaler, export.json "
        "(inputs, outputs, shapes) and parity.json (max difference against the eager "
        "model). Fails when parity exceeds the format's tolerance.",
    )
    p.add_argument("run", metavar="RUN", help="a run folder")
    p.add_argument("--format", choices=FORMATS, help="default: onnx (or the --quantize-method's)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/export/FORMAT/)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default: 17)")
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help="also write an int8 dynamically quantized model, judged on the run's held-out data",
    )
    p.add_argument(
        "--quantize-method",
        choices=["ort-dynamic", "torch-dynamic", "bf16"],
        help="with --quantize: the int8 path (default: ort-dynamic for onnx, torch-dynamic for "
        "torchscript; the fastest measured here is ort-dynamic, see docs/benchmarks.md)",
    )
    p.add_argument(
        "--allow-metric-change",
        action="store_true",
        help="with --quantize: keep the int8 model even if its metric moved beyond the limit",
    )
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from rnnkit.export import export_onnx, export_torchscript

    if args.opset is not None and args.format not in (None, "onnx"):
        raise ConfigError(f"--opset applies to --format onnx, not {args.format}")
    if args.opset is not None and args.quantize:
        raise ConfigError("--opset cannot be combined with --quantize (int8 uses the default)")
    if args.quantize_method and not args.quantize:
        raise ConfigError("--quantize-method needs --quantize int8")
    if args.quantize:
        # quantize() writes the fp32 export (parity enforced) beside the int8 model.
        from rnnkit.export import quantize

        method = quantize.method_for(args.quantize_method, args.format)
        q = quantize.quantize(
            args.run,
            args.out,
            method=method,
            allow_metric_change=args.allow_metric_change,
        )
        parity = json.loads((Path(q.path).parent / "parity.json").read_text(encoding="utf-8"))
        fmt = quantize.METHOD_FORMAT[method]
        print(f"fp32 {fmt} parity: worst {parity['max_abs_diff']:.3g}")
        print(q.report.table())
        _print_files(q.files)
        return 0
    if args.format in (None, "onnx"):
        result = export_onnx(args.run, args.out, opset=args.opset)
    else:
        result = export_torchscript(args.run, args.out)
    print(result.parity.table())
    _print_files(result.files)
    return 0


def _print_files(files: list) -> None:
    print(f"wrote {len(files)} files to {Path(files[0]).parent}:")
    for path in files:
        print(f"  {Path(path).name}")
