"""The ``gapscale`` command line: one group, one subcommand per pipeline stage.

Input errors (a missing or malformed file, an invalid instrument, a bad parameter) end with a
single ``Error: ...`` line on stderr and exit status 2; a user never sees a traceback for them.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from instrument import DEFAULT_INSTRUMENT, InstrumentError, LavaanSyntaxError

__all__ = ["cli", "main", "GapscaleError"]

EXIT_INPUT = 2


class GapscaleError(click.ClickException):
    """A user-facing input error: one line, exit status 2."""

    exit_code = EXIT_INPUT


@contextmanager
def user_errors():
    """Turn input errors raised by the library into one-line CLI errors."""
    try:
        yield
    except InstrumentError as exc:
        first = exc.problems[0] if exc.problems else ""
        more = len(exc.problems) - 1
        extra = f" (and {more} more; run 'gapscale instrument validate {exc.source}')" if more > 0 else ""
        raise GapscaleError(f"{exc.source}: invalid instrument: {first}{extra}") from None
    except (LavaanSyntaxError, ValueError, TypeError) as exc:
        raise GapscaleError(str(exc)) from None
    except OSError as exc:
        raise GapscaleError(f"{exc.filename or ''}: {exc.strerror or exc}") from None


INSTRUMENT_PATH = click.Path(exists=True, dir_okay=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gapscale")
def cli():
    """gapscale: a survey-instrument psychometrics pipeline.

    Describe a scale as a YAML instrument, simulate or ingest responses, and run each stage of
    the analysis. Every stage is a subcommand that works on any instrument and data set; under
    DVC, `dvc repro` runs them in order with the parameters in params.yaml.
    """


@cli.group("instrument")
def instrument_group():
    """Check an instrument file or render it as a questionnaire."""


@instrument_group.command("validate")
@click.argument("file", type=INSTRUMENT_PATH)
def instrument_validate(file):
    """Check an instrument YAML FILE and its lavaan model; list every problem.

    Exit status 0 when the instrument is valid, 2 otherwise (one line per problem, each with
    its YAML path).
    """
    from pipeline.instrument import validate

    try:
        click.echo(validate(file))
    except InstrumentError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise GapscaleError(f"{file}: {len(exc.problems)} problem(s); the instrument is not valid") from None


@instrument_group.command("render")
@click.argument("file", type=INSTRUMENT_PATH)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for questionnaire.md, questionnaire.html, codebook.csv and qualtrics.txt.")
def instrument_render(file, out):
    """Write the questionnaire (Markdown, HTML), codebook and Qualtrics import file of FILE."""
    from pipeline.instrument import render

    with user_errors():
        written = render(file, out)
    click.echo(f"rendered {file} into {out}: " + ", ".join(p.name for p in written))


@cli.command("simulate")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=str(DEFAULT_INSTRUMENT),
              show_default="the default Sustainability Gap instrument", help="Instrument YAML file.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with `seed` and a `simulate:` section (population model, defect rates); "
                   "without it, every construct is exogenous and built-in defaults apply.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for responses.csv, truth.json, truth_respondents.csv and simulate.json.")
@click.option("--n", "n", type=click.IntRange(min=2), default=None,
              help="Number of respondents (overrides simulate.n; default 1000).")
@click.option("--seed", "seed", type=click.IntRange(min=0), default=None,
              help="Random seed (overrides `seed` in the params file; default 0).")
def simulate_cmd(instrument_path, params_path, out, n, seed):
    """Draw a simulated study from a population model, with realistic defects.

    Writes what a survey platform would export (reverse-keyed items as answered, straight-liners,
    random responders, speeders, failed attention checks, missing cells, duplicates and
    out-of-range typos at the rates in params) and the truth about it. Every file says the data
    are simulated. The same seed gives the same bytes.
    """
    from pipeline.simulate import run

    with user_errors():
        metrics = run(instrument_path, params_path, out, n=n, seed=seed)
    click.echo(
        f"simulated {metrics['respondents']} respondents ({metrics['rows']} rows with duplicates) into {out}; "
        "the data are SIMULATED"
    )


def main(argv=None) -> None:
    """Console entry point: run the CLI, turning usage errors into one line and exit status 2."""
    try:
        code = cli.main(args=argv, prog_name="gapscale", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "gapscale"
        click.echo(f"Error: {exc.format_message()} (see '{cmd} --help')", err=True)
        sys.exit(EXIT_INPUT)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
