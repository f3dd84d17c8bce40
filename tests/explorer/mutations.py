"""One deliberate mutation per invariant of tests/explorer/harness.py: each is applied in turn, the
interleaving tests run, the file is restored, and the verdict printed (CAUGHT, or MISSED: the suite
would not notice that bug). Run from the repository root on a clean tree:

    .venv/bin/python -m tests.explorer.mutations [test paths]

It rewrites one source file at a time and puts it back, so do not edit the tree while it runs.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
PY = sys.executable
TESTS = sys.argv[1:] or ["tests/explorer/test_explorer.py", "tests/flows/test_interleavings.py"]
MUTATIONS = {
    "I1 RAM equals the ledger: only the first grant is marked active": (
        "shared/flows/provision.py",
        '''    for grant in ticket.grants:
        if grant.status == "planned":
            grant.status = "active"''',
        """    for grant in ticket.grants:
        if grant.status == "planned":
            grant.status = "active"
            break""",
    ),
    "I2 a revoked ticket holds no grant: revoke skips resource-group-scoped grants": (
        "shared/flows/revoke.py",
        "detach = [g for g in in_ram if g.user_name in ours and _attachment(g) not in still_held]",
        "detach = [g for g in in_ram if g.user_name in ours and _attachment(g) not in still_held and not g.resource_group_id]",
    ),
    "I3 a leaver gets nothing: the leaver check is skipped": (
        "shared/flows/provision.py",
        """    leaver = rt.store.ledger.get_leaver(owner)
    if leaver is None:""",
        """    leaver = None
    if leaver is None:""",
    ),
    "I4 no orphan policy: revoke never deletes unused ramflow policies": (
        "shared/flows/revoke.py",
        'stepper.run("delete unused policies", delete_policy_steps(rt, unused))',
        'stepper.run("delete unused policies", delete_policy_steps(rt, []))',
    ),
    "I5 the delivered secret opens to the key: the wrong value is sealed": (
        "shared/flows/provision.py",
        "sealed = seal(self.request.delivery_public_key, key.secret.get_secret_value())",
        "sealed = seal(self.request.delivery_public_key, key.access_key_id)",
    ),
    "I6 no approval is lost: an approval kept early never looks for the ticket again": (
        "shared/flows/provision.py",
        """        ticket = ledger.get_ticket(data.ticket_id)
        if ticket is None:
            return kept""",
        """        return kept""",
    ),
}


def main() -> int:
    missed = 0
    for name, (path, old, new) in MUTATIONS.items():
        missed += not _caught(name, path, old, new)
    return 1 if missed else 0


def _caught(name: str, path: str, old: str, new: str) -> bool:
    f = ROOT / path
    original = f.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"{name}: the code to mutate is no longer in {path}; update this table")
    f.write_text(original.replace(old, new))
    try:
        began = time.time()
        done = subprocess.run(
            [PY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        verdict = "CAUGHT" if done.returncode else "MISSED"
        print(f"{verdict} {name} ({time.time() - began:.0f} s): {failed[:1]}", flush=True)
        return done.returncode != 0
    finally:
        f.write_text(original)


if __name__ == "__main__":
    raise SystemExit(main())
