"""Command-line to-do list stored in a JSON file in the user's home directory."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

STORE = Path.home() / ".todo.json"


@dataclass
class Task:
    title: str
    done: bool = False
    due: str | None = None
    tags: list[str] = field(default_factory=list)


def load() -> list[Task]:
    if not STORE.exists():
        return []
    return [Task(**item) for item in json.loads(STORE.read_text(encoding="utf-8"))]


def save(tasks: list[Task]) -> None:
    tmp = STORE.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(t) for t in tasks], indent=2), encoding="utf-8")
    tmp.replace(STORE)


def main() -> None:
    parser = argparse.ArgumentParser(description="A minimal to-do list.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add", help="add a task")
    add.add_argument("title")
    add.add_argument("--due", help="due date, YYYY-MM-DD")
    add.add_argument("--tag", action="append", default=[])
    sub.add_parser("list", help="show open tasks")
    done = sub.add_parser("done", help="mark a task as done")
    done.add_argument("number", type=int)
    args = parser.parse_args()

    tasks = load()
    if args.cmd == "add":
        tasks.append(Task(args.title, due=args.due, tags=args.tag))
        save(tasks)
    elif args.cmd == "done":
        tasks[args.number - 1].done = True
        save(tasks)
    else:
        today = date.today().isoformat()
        for i, t in enumerate(tasks, 1):
            if t.done:
                continue
            overdue = " (overdue!)" if t.due and t.due < today else ""
            tags = " ".join(f"#{tag}" for tag in t.tags)
            print(f"{i:3d}. {t.title} {tags}{overdue}")


if __name__ == "__main__":
    main()
