"""``dispatch solve``: solve a JSON problem, or a Solomon VRPTW instance, from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dispatch.errors import ValidationError
from solver.jsonio import JsonFormatError, params_with, problem_from_json, result_to_json
from solver.params import SolveParams
from solver.solomon import SolomonFormatError, read_solomon, solomon_problem, solomon_routes
from solver.solve import solve


@click.command("solve")
@click.argument("problem_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--solomon", "solomon_file", type=click.Path(dir_okay=False, path_type=Path),
              help="求解 Solomon VRPTW 算例文件 / Solve a Solomon VRPTW instance file.")
@click.option("--time-limit", type=float, default=None,
              help="时间上限（秒，默认 10）/ Time limit in seconds (default 10).")
@click.option("--seed", type=int, default=None, help="随机种子 / Random seed.")
@click.option("--workers", type=int, default=None,
              help="并行进程数（默认全部核心）/ Parallel processes (default: all cores).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="结果写入此文件（默认输出到屏幕）/ Write the result here (default: print it).")
def solve_command(problem_file: Path | None, solomon_file: Path | None, time_limit: float | None,
                  seed: int | None, workers: int | None, out_file: Path | None) -> None:
    """求解规划问题（JSON 或 Solomon 算例）/ Solve a routing problem (JSON or Solomon instance)."""
    if (problem_file is None) == (solomon_file is None):
        raise ValidationError(
            "Give either a PROBLEM.json file or --solomon FILE.txt, not both or neither.",
            "请指定 PROBLEM.json 文件或 --solomon FILE.txt 二者之一。",
            field="PROBLEM_FILE")
    cli = {"time_limit": time_limit, "seed": seed,
           "workers": workers if workers is not None else SolveParams.all_cores()}
    if solomon_file is not None:
        output = _solve_solomon(solomon_file, cli)
    else:
        output = _solve_json(problem_file, cli)  # type: ignore[arg-type]
    text = json.dumps(output, ensure_ascii=False, indent=2)
    if out_file is None:
        click.echo(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        click.echo(f"结果已写入 {out_file} / Result written to {out_file}")


def _params(overrides: dict[str, Any] | None, cli: dict[str, Any]) -> SolveParams:
    """File overrides first, then whatever the command line gives explicitly."""
    merged = {**(overrides or {}), **{k: v for k, v in cli.items() if v is not None}}
    return params_with(SolveParams(), merged)


def _solve_json(path: Path, cli: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"Cannot read the file: {exc.strerror}.",
                              f"无法读取文件：{exc.strerror}。", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).",
                              f"不是有效的 JSON：{exc.msg}（第 {exc.lineno} 行）。",
                              file=str(path), row=exc.lineno) from exc
    try:
        problem, routes, overrides = problem_from_json(data)
        params = _params(overrides, cli)
    except JsonFormatError as exc:
        raise ValidationError(exc.problem, f"格式错误：{exc.problem}", field=exc.path,
                              file=str(path)) from exc
    return result_to_json(solve(problem, params, routes))


def _solve_solomon(path: Path, cli: dict[str, Any]) -> dict[str, Any]:
    try:
        instance = read_solomon(path)
    except SolomonFormatError as exc:
        raise ValidationError(str(exc), f"Solomon 算例格式错误：{exc}", file=str(path)) from exc
    try:
        params = _params(None, cli)
    except JsonFormatError as exc:
        raise ValidationError(exc.problem, f"参数错误：{exc.problem}", field=exc.path) from exc
    result = solve(solomon_problem(instance), params)
    routes = solomon_routes(result, instance)
    distance = sum(instance.distance(a, b) for r in routes for a, b in zip([0, *r], [*r, 0]))
    output = result_to_json(result)
    output.update({"instance": instance.name, "routes": routes,
                   "distance": round(distance, 4), "vehicles": len(routes)})
    return output
