"""`make pictures`: draw every picture again (offline), then print where each went."""

from __future__ import annotations

from docs.pictures import architecture, benchmarks, dashboard, dlq_lifecycle


def main() -> None:
    for path in (architecture.draw(), dlq_lifecycle.draw(), dashboard.draw(), *benchmarks.draw()):
        print(path)


if __name__ == "__main__":
    main()
