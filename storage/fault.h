/*
 * fault.h - the fault-injecting storage wrapper: a second public header of the storage module,
 * meant for tests only (secretsd itself never includes it).
 *
 * Tests of the layers above storage (crypto, auth, the server library) wrap a real store in this
 * backend and make chosen calls fail with -EIO, to prove that a storage error surfaces as an error
 * and never as a half-done change. The conformance suite runs against it too (storage/fault.c).
 */
#ifndef SX_STORAGE_FAULT_H
#define SX_STORAGE_FAULT_H

#include "storage/storage.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wrap inner in a backend that forwards every call, except that it fails with -EIO according to
 * the policy set by sx_storage_fault_set() (none at first). On success *ret is the wrapper, which
 * owns inner from then on: sx_storage_close() of the wrapper closes inner, and inner must not be
 * used or closed directly. -EINVAL (inner or ret NULL) or -ENOMEM, and then inner stays the
 * caller's. Its name is "fault" and its caps are inner's; a failed call is not forwarded, so it
 * changes nothing. Close and checkpoint are forwarded uncounted and never made to fail (checkpoint
 * still returns inner's own errors); the wrapper has no change_seq slot, so
 * sx_storage_change_seq() on it is -ENOTSUP. */
int sx_storage_fault_wrap(sx_storage *inner, sx_storage **ret) __attribute__((warn_unused_result));

/* Fail the nth call from now (1 = the next call; 0 = never) and, when every is true, every call
 * after that too; also resets the count of sx_storage_fault_calls(). Counts get, put, del, batch,
 * iter_new and iterator steps. fault must be a handle made by sx_storage_fault_wrap().
 * Thread-safe. */
void sx_storage_fault_set(sx_storage *fault, unsigned long nth, bool every);

/* Counted calls since the last sx_storage_fault_set() (or the wrap), the failed ones included: a
 * test that walks nth over every call of an operation knows it has passed the last one when nth
 * exceeds this. fault must be a handle made by sx_storage_fault_wrap(). Thread-safe. */
unsigned long sx_storage_fault_calls(sx_storage *fault);

#ifdef __cplusplus
}
#endif

#endif /* SX_STORAGE_FAULT_H */
