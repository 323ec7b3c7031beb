"""The background indexer: one update at a time, none missed, failures reported, progress readable."""
from __future__ import annotations

import threading

from tqdm import tqdm

from rag.index import NOWHERE, BuildReport
from rag.indexer import Indexer


def test_a_change_during_an_update_gets_an_update_of_its_own():
    started, release, runs = threading.Event(), threading.Event(), []

    def update(watch):
        bar = tqdm(total=10, desc="indexing", file=NOWHERE)
        watch(bar)
        bar.update(4)
        runs.append(len(runs))
        started.set()
        release.wait(10)
        return BuildReport(added=[f"file{len(runs)}.txt"], chunks=len(runs))

    indexer = Indexer(update)
    indexer.request()
    assert started.wait(10)
    status = indexer.status()
    assert status.running and (status.stage, status.done, status.total) == ("embedding", 4, 10)
    assert "4 of 10 chunks embedded" in status.line()
    indexer.request()  # a file dropped while the first update runs
    indexer.request()  # ... and another: still one more run, not two
    release.set()
    report = indexer.wait(20)
    assert runs == [0, 1] and not indexer.running and report.added == ["file2.txt"]
    assert indexer.status().last["added"] == ["file2.txt"] and indexer.status().line() == ""


def test_a_failed_update_is_reported_and_the_next_request_runs_again():
    outcomes = iter([RuntimeError("disk full"), BuildReport(changed=["a.txt"])])

    def update(watch):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    indexer = Indexer(update)
    indexer.request()
    indexer.wait(10)
    assert "disk full" in indexer.status().error and "failed" in indexer.status().line()
    indexer.request()
    assert indexer.wait(10).changed == ["a.txt"] and indexer.status().error == ""
