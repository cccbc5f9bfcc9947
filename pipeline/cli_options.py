"""Command-line options that set a field of a stage's config dataclass: their defaults come from the dataclass.

    fields = [config_option(parser, "--seed", ("stages.caption.config", "CaptionConfig", "seed"), type=int,
                            help="... (default %(default)s)").dest]
    parser.set_defaults(config_fields=fields, formatter_class=...)   # see register() of pipeline/commands/caption.py
    options = given_options(args)                # {"seed": 3} for the options the user gave
    config = build(CaptionConfig, options, "dymesh caption")

The stage module is imported only when help is printed, so `dymesh --help` stays fast; an option left unset is left
out of `options`, so the dataclass's own default applies.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib

CONFIG_FIELD = "config_field"  # action attribute: (module, class, field) of the option's dataclass field


def field_default(module: str, cls: str, name: str):
    """The default of one dataclass field (default_factory called)."""
    for f in dataclasses.fields(getattr(importlib.import_module(module), cls)):
        if f.name == name:
            return f.default if f.default is not dataclasses.MISSING else f.default_factory()
    raise AttributeError(f"{module}.{cls} has no field {name!r}")


class ConfigDefaultsFormatter(argparse.HelpFormatter):
    """Fills `%(default)s` of config options from their dataclass field when help is shown."""

    def _expand_help(self, action):
        source = getattr(action, CONFIG_FIELD, None)
        if source is None:
            return super()._expand_help(action)
        saved = action.default
        action.default = field_default(*source)
        try:
            return super()._expand_help(action)
        finally:
            action.default = saved


def config_option(parser: argparse.ArgumentParser, flag: str, field: tuple[str, str, str], **kwargs):
    """Add an option for a config field; it is None unless given (see given_options)."""
    action = parser.add_argument(flag, default=None, dest=field[2], **kwargs)
    setattr(action, CONFIG_FIELD, field)
    return action


def given_options(args: argparse.Namespace) -> dict:
    """{field: value} of the config options (`args.config_fields`) the user gave."""
    return {name: getattr(args, name) for name in args.config_fields if getattr(args, name) is not None}
