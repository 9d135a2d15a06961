"""What LabelForge's engine launchers (llama_server.py, embedding_server.py) share: they exit when
their parent dies, so a killed LabelForge never leaves an engine behind.

LabelForge passes its own PID in LABELFORGE_PARENT_PID. A watchdog thread, started before
anything slow, exits the process as soon as that PID is no longer its parent. Comparing with
the PID LabelForge passed (not with the parent seen at start) also covers a kill that lands
before the launcher starts, which once left an orphaned engine behind; PR_SET_PDEATHSIG is not
used because it fires when the spawning *thread* exits, which in a thread pool is any time.
"""
import os
import threading
import time


def exit_with_parent():
    expected = os.environ.get("LABELFORGE_PARENT_PID")
    parent = int(expected) if expected and expected.isdigit() else os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.1)
        os._exit(0)

    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
