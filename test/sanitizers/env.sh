# Sourced by scripts/test.sh for its sanitizer suites: every finding fails
# the run (UBSan does not recover; ASan, LSan and TSan exit non-zero).
# ASan keeps freed memory in quarantine to catch uses after free; 256 MB
# by default, which the sink tests that bound a process's growth counted
# as the peer's doing (an AMQP flood "grew" 51 MB): 16 MB still catches
# a use soon after the free.
sanitizers=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:quarantine_size_mb=16"
export LSAN_OPTIONS="suppressions=$sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$sanitizers/tsan.supp"
