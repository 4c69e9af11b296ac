"""Property-based fuzzing of every parser that reads untrusted input (hypothesis).

`make test` runs each target for a few hundred examples (seconds); `make fuzz` runs them long
(`KINKO_FUZZ_EXAMPLES`, default there 20000). Every crash found becomes a plain regression test beside its subject.
"""
