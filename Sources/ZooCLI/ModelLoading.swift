import TorchFormat
import ZooCore
import ZooModels
import ZooRuntime

/// Opens a model file: a PyTorch checkpoint bound to a zoo architecture (detected, or `architecture`).
func loadModel(_ path: String, architecture: String?, key: String? = nil) throws -> Model {
    var arch: Architecture?
    if let architecture {
        guard let found = Architecture(rawValue: architecture) else {
            throw UserError(message: "unknown architecture '\(architecture)' (zoo models lists them: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        arch = found
    }
    do {
        let checkpoint = try Checkpoint.load(path: path)
        let stateDict = try checkpoint.stateDict(key: key)
        return try Model.bind(stateDict, architecture: arch)
    } catch let error as CheckpointError {
        throw UserError(error)
    } catch {
        throw UserError(message: "\(path): \(error)")
    }
}

/// Reads a .npy input, naming the file in errors.
func readInput(_ path: String) throws -> Tensor {
    do { return try NumPy.read(path: path) } catch { throw UserError(error) }
}

func makeExecutor(_ model: Model, threads: Int?, fuse: Bool = true) throws -> Executor {
    do {
        return try Executor(graph: model.graph, options: .init(threads: threads ?? Executor.defaultThreads, fuse: fuse))
    } catch { throw UserError(message: "\(model.architecture.rawValue): \(error)") }
}

/// Runs the executor, turning execution errors into one-line user errors.
func execute(_ executor: Executor, _ input: Tensor, path: String) throws -> Tensor {
    do {
        let outputs = try executor.run(input)
        return outputs[executor.graph.outputs[0]]!
    } catch { throw UserError(message: "\(path): \(error)") }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}
