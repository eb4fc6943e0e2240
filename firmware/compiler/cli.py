"""The command line: ``python -m firmware.compiler MODEL.npz [--config NAME] [--map] [--no-im2col]``
compiles a deploy file and prints the allocation map, the layer table and a summary."""

import argparse
import sys

from contract.config import CONFIGS, config_by_name
from platforms import DEFAULT_BOARD, get_board

from .deploy_input import DeployFileError, read_deploy_file
from .errors import CompileError
from .pipeline import compile_model

__all__ = ["main"]


def main(argv=None):
    """Run the command line; returns the exit status (1 with one ``error:`` line on stderr when
    the configuration is unknown, the file unreadable or the network does not fit)."""
    ap = argparse.ArgumentParser(prog="python -m firmware.compiler",
                                 description="Compile a deploy file; print the allocation map and a summary.")
    ap.add_argument("model", help="deploy file (.npz)")
    default_config = get_board(DEFAULT_BOARD).config_name
    ap.add_argument("--config", default=default_config, metavar="NAME",
                    help=f"accelerator configuration: {', '.join(CONFIGS)} (default: {default_config}, "
                         f"the {DEFAULT_BOARD}'s, as firmware.run and make demo)")
    ap.add_argument("--map", action="store_true", help="print the allocation table")
    ap.add_argument("--no-im2col", action="store_true",
                    help="do not let the EMBED write the first conv's windows (EMBED window mode)")
    args = ap.parse_args(argv)
    try:
        config = config_by_name(args.config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        deploy = read_deploy_file(args.model)
        compiled = compile_model(deploy, config, im2col=not args.no_im2col)
    except (DeployFileError, CompileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.map:
        print(compiled.allocation_table())
        print()
        print(compiled.layer_table())
        print()
    print(compiled.summary())
    return 0
