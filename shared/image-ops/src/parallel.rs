//! Work spread over the threads this process may run on, results in order.

use crate::Result;

/// The threads this process may run on: one on a Lambda function up to 1,769 MB, or when
/// pinned to one core.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `f` applied to every item, in order; on [`threads`] threads, each taking the next item not
/// yet taken, so only that many items are in work at once (a slice's tiles being cut and
/// encoded, a HEIC's tiles being decoded). The first error in item order is returned, as a
/// sequential loop would return it.
pub(crate) fn map_all<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    map_on(threads(), items, f)
}

/// [`map_all`] on at most `threads` threads.
pub(crate) fn map_on<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut done: Vec<(usize, Result<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    // Stop taking work after a failure: the caller gets the error either way.
                    while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        let result = f(item);
                        if result.is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        mine.push((i, result));
                    }
                    mine
                })
            })
            .collect();
        // A worker's panic is re-raised here, as it would have been on this thread.
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    // Items after a failure may never have been taken; every one before the first failure was.
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn items_mapped_on_several_threads_come_back_in_order() {
        let items: Vec<usize> = (0..37).collect();
        for threads in [1, 2, 3, 8, 64] {
            let out = map_on(threads, &items, |&i| {
                // Uneven work, so that threads finish out of order.
                std::thread::sleep(std::time::Duration::from_micros((i as u64 * 7919) % 500));
                Ok(i)
            })
            .unwrap();
            assert_eq!(out, items, "{threads} threads");
        }
    }

    #[test]
    fn the_first_failing_item_in_order_is_the_error() {
        let items: Vec<usize> = (0..40).collect();
        for threads in [1, 2, 4] {
            let err = map_on(threads, &items, |&i| {
                // Item 29 fails at once; item 11 fails late, after others have started.
                if i == 11 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                if i == 11 || i == 29 {
                    Err(Error::Encode(format!("tile {i}")))
                } else {
                    Ok(i)
                }
            })
            .unwrap_err();
            assert_eq!(err.to_string(), Error::Encode("tile 11".into()).to_string(), "{threads} threads");
        }
        assert!(map_on(4, &Vec::<usize>::new(), |_| Ok(0usize)).unwrap().is_empty());
    }
}
