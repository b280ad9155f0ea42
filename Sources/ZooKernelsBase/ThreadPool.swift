#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of persistent threads that run data-parallel loops: `threads - 1` workers plus the
/// calling thread.
///
/// `parallelFor` hands indices out one at a time from a shared counter (uneven items balance
/// themselves), runs items on the caller's thread too, and returns when every item has finished.
/// Which thread runs which item is unspecified, so callers that need deterministic results make
/// each item's result independent of that — the kernels in this module do: an item owns whole
/// output tiles and never shares a reduction with another item.
///
/// Cost per call: no allocation; workers spin briefly on an atomic between calls (so the several
/// calls per layer do not pay a futex wake-up) and then sleep on a condition variable.
///
/// Calls are serialized: concurrent callers from different threads wait their turn. A body must
/// not call `parallelFor` on the same pool (that deadlocks). Releasing the pool stops and joins
/// its workers.
public final class ThreadPool: @unchecked Sendable {
    /// Worker threads plus the caller.
    public let threadCount: Int
    private let core = Core()
    private var workers: [pthread_t] = []

    /// - Parameter threads: total threads including the caller; must be ≥ 1.
    public init(threads: Int) {
        precondition(threads >= 1, "ThreadPool needs at least one thread")
        threadCount = threads
        for _ in 1..<threads {
            // Each worker owns a reference to the core (not to the pool, so the pool can deinit).
            let context = Unmanaged.passRetained(core).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { context in
                guard let context else { return nil }
                let core = Unmanaged<Core>.fromOpaque(context).takeRetainedValue()
                core.workerLoop()
                return nil
            }, context)
            precondition(status == 0, "pthread_create failed (\(status))")
            workers.append(thread)
        }
    }

    deinit {
        core.stop()
        for thread in workers { pthread_join(thread, nil) }
    }

    /// Runs `body(i)` for every `i` in `0..<count` on the pool's threads; returns when all are done.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        core.run(count, workers: threadCount - 1, body)
    }
}

/// State shared by the caller and the workers of one pool.
private final class Core: @unchecked Sendable {
    /// Incremented once per call (and once at shutdown); workers wait for a change.
    private let generation = Atomic<Int>(0)
    /// Next unclaimed item index of the current call.
    private let nextItem = Atomic<Int>(0)
    /// Workers that have not yet finished the current call.
    private let busyWorkers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)

    // Written by the caller before `generation` is released, read by workers after acquiring it.
    private var itemCount = 0
    private var body: ((Int) -> Void)?

    private let callLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let doneCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// Atomic polls before a waiting thread falls back to sleeping (tens of microseconds).
    private static let spinLimit = 1 << 16

    init() {
        pthread_mutex_init(callLock, nil)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wakeCondition, nil)
        pthread_cond_init(doneCondition, nil)
    }

    deinit {
        pthread_cond_destroy(wakeCondition)
        pthread_cond_destroy(doneCondition)
        pthread_mutex_destroy(lock)
        pthread_mutex_destroy(callLock)
        callLock.deallocate()
        lock.deallocate()
        wakeCondition.deallocate()
        doneCondition.deallocate()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        publishGeneration()
    }

    func run(_ count: Int, workers: Int, _ body: (Int) -> Void) {
        pthread_mutex_lock(callLock)
        defer { pthread_mutex_unlock(callLock) }
        withoutActuallyEscaping(body) { body in
            self.body = body
            itemCount = count
            nextItem.store(0, ordering: .relaxed)
            busyWorkers.store(workers, ordering: .relaxed)
            publishGeneration()
            runItems()
            waitForWorkers()
            self.body = nil
        }
    }

    private func publishGeneration() {
        pthread_mutex_lock(lock)
        generation.wrappingAdd(1, ordering: .releasing)
        pthread_cond_broadcast(wakeCondition)
        pthread_mutex_unlock(lock)
    }

    /// Claims and runs items until none are left. Not inlined so that the local copy of `body`
    /// is released before the worker reports completion (`withoutActuallyEscaping` checks that).
    @inline(never)
    private func runItems() {
        guard let body else { return }
        let count = itemCount
        while true {
            let i = nextItem.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    private func waitForWorkers() {
        for _ in 0..<Self.spinLimit where busyWorkers.load(ordering: .acquiring) == 0 { return }
        pthread_mutex_lock(lock)
        while busyWorkers.load(ordering: .acquiring) != 0 { pthread_cond_wait(doneCondition, lock) }
        pthread_mutex_unlock(lock)
    }

    func workerLoop() {
        var seen = 0
        while true {
            seen = waitForGeneration(after: seen)
            if stopping.load(ordering: .acquiring) { return }
            runItems()
            if busyWorkers.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(lock)
                pthread_cond_signal(doneCondition)
                pthread_mutex_unlock(lock)
            }
        }
    }

    private func waitForGeneration(after seen: Int) -> Int {
        for _ in 0..<Self.spinLimit {
            let current = generation.load(ordering: .acquiring)
            if current != seen { return current }
        }
        pthread_mutex_lock(lock)
        var current = generation.load(ordering: .acquiring)
        while current == seen {
            pthread_cond_wait(wakeCondition, lock)
            current = generation.load(ordering: .acquiring)
        }
        pthread_mutex_unlock(lock)
        return current
    }
}
