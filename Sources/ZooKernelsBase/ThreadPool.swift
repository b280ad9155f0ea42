#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of persistent threads that run data-parallel loops: `threads - 1` workers plus the
/// calling thread.
///
/// `parallelFor` gives thread `t` of `T` (the caller is thread 0) the contiguous share
/// `evenSplit(count, parts: T, index: t)` and runs it in order; a thread that finishes its share
/// takes the items the others have not started, one at a time (uneven items still balance). So
/// when consecutive calls lay their items out alike (say, by output rows), each core mostly reads
/// what it wrote itself: on the two-core VMs this project runs on, a depthwise layer on 56×56 ran
/// at 1.2× its one-thread speed with items handed out from one shared counter, and at 2× with
/// shares (a core reading or rewriting lines the other has just written waits for them). Which
/// thread runs which item is still not guaranteed, so callers that need deterministic results make
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
        core.shares = (0..<threads).map { _ in Share() }
        for index in 1..<threads {
            // Each worker owns a reference to the core (not to the pool, so the pool can deinit).
            let context = Unmanaged.passRetained(Worker(core: core, index: index)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { context in
                guard let context else { return nil }
                let worker = Unmanaged<Worker>.fromOpaque(context).takeRetainedValue()
                worker.core.workerLoop(index: worker.index)
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

    /// Elements per `parallelChunks` item: 64 KB of floats, enough to pay for handing an item out.
    public static let chunk = 1 << 14

    /// `body(range)` for consecutive ranges of `chunk` elements covering `0..<count` (the last one
    /// shorter), in parallel — for elementwise work and copies, where any cut gives the same values.
    public func parallelChunks(_ count: Int, _ body: (Range<Int>) -> Void) {
        parallelFor((count + Self.chunk - 1) / Self.chunk) { task in
            body(task * Self.chunk..<Swift.min(count, (task + 1) * Self.chunk))
        }
    }
}

/// What a worker thread is started with: its pool's core and its thread index (1…).
private final class Worker {
    let core: Core
    let index: Int
    init(core: Core, index: Int) { (self.core, self.index) = (core, index) }
}

/// One thread's share of the current call: items `next ..< end`, claimed from the front by the
/// owner and, once their own share is done, by the other threads.
private final class Share: @unchecked Sendable {
    let next = Atomic<Int>(0)
    var end = 0
}

/// State shared by the caller and the workers of one pool.
private final class Core: @unchecked Sendable {
    /// Incremented once per call (and once at shutdown); workers wait for a change.
    private let generation = Atomic<Int>(0)
    /// Each thread's share of the current call's items (set once by the pool's init).
    var shares: [Share] = []
    /// Workers that have not yet finished the current call.
    private let busyWorkers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)

    // Written by the caller before `generation` is released, read by workers after acquiring it
    // (so are the shares' `end` and the starting `next`).
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
            for (t, share) in shares.enumerated() {
                let range = evenSplit(count, parts: shares.count, index: t)
                share.next.store(range.lowerBound, ordering: .relaxed)
                share.end = range.upperBound
            }
            busyWorkers.store(workers, ordering: .relaxed)
            publishGeneration()
            runItems(thread: 0)
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

    /// Claims and runs the items of this thread's share, then those left in the others' shares,
    /// until none are left. Not inlined so that the local copy of `body` is released before the
    /// worker reports completion (`withoutActuallyEscaping` checks that).
    @inline(never)
    private func runItems(thread: Int) {
        guard let body else { return }
        for offset in 0..<shares.count {
            let share = shares[(thread + offset) % shares.count]
            while true {
                let i = share.next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= share.end { break }
                body(i)
            }
        }
    }

    private func waitForWorkers() {
        for _ in 0..<Self.spinLimit where busyWorkers.load(ordering: .acquiring) == 0 { return }
        pthread_mutex_lock(lock)
        while busyWorkers.load(ordering: .acquiring) != 0 { pthread_cond_wait(doneCondition, lock) }
        pthread_mutex_unlock(lock)
    }

    func workerLoop(index: Int) {
        var seen = 0
        while true {
            seen = waitForGeneration(after: seen)
            if stopping.load(ordering: .acquiring) { return }
            runItems(thread: index)
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
