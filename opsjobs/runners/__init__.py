"""How jobs run: kinds (what) and modes (where): ``inproc`` for inline/thread, ``process``
for child processes, ``capture`` for per-job output."""
