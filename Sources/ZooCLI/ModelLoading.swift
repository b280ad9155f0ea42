import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooModels
import ZooRuntime

/// A runnable model from any file zoo reads: a PyTorch checkpoint or safetensors file bound to a zoo
/// architecture (detected, or `--arch`), or an ONNX graph.
struct LoadedModel {
    let graph: Graph
    /// What it is, for messages: the architecture, or "onnx opset N".
    let kind: String
}

/// A generated input for `graph`: its declared input shape with the batch set to `batch`, values from
/// zoo's deterministic generator. Bounded to 2^28 values (1 GiB).
func generatedInput(for graph: Graph, batch: Int, seed: UInt64) throws -> Tensor {
    let declared = graph.inputs[0]
    var shape = [batch]
    for dim in declared.shape.dropFirst() {
        guard let size = dim.value else { throw UserError(message: "input \(declared.name) \(declared) has a symbolic dimension: give --input") }
        shape.append(size)
    }
    guard batch >= 1, let count = Tensor.checkedCount(shape), count <= 1 << 28 else {
        throw UserError(message: "a generated input of shape \(shape) is too large (limit 2^28 values)")
    }
    return WeightGenerator(seed: seed).input(shape: shape)
}

func parseArchitecture(_ name: String?) throws -> Architecture? {
    guard let name else { return nil }
    guard let found = Architecture(rawValue: name) else {
        throw UserError(message: "unknown architecture '\(name)' (zoo models lists them: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    return found
}

func loadModel(_ path: String, architecture: String?, key: String? = nil) throws -> LoadedModel {
    let arch = try parseArchitecture(architecture)
    let format = try FileFormat(path: path)
    do {
        let tensors: [(name: String, tensor: Tensor)]
        switch format {
        case .onnx:
            let model = try ONNX.load(path: path)
            return LoadedModel(graph: model.graph, kind: "onnx opset \(model.opset)")
        case .safetensors:
            tensors = try Safetensors.load(path: path).tensors
        case .torch:
            tensors = try Checkpoint.load(path: path).stateDict(key: key).entries.map { ($0.name, $0.tensor.tensor) }
        }
        let model = try Model.bind(tensors: tensors, architecture: arch)
        return LoadedModel(graph: model.graph, kind: model.architecture.rawValue)
    } catch let error as CheckpointError {
        throw UserError(error)
    } catch let error as ONNXError {
        throw UserError(error)
    } catch let error as SafetensorsError {
        throw UserError(error)
    } catch {
        throw UserError(message: "\(path): \(error)")
    }
}

/// Reads a .npy input, naming the file in errors.
func readInput(_ path: String) throws -> Tensor {
    do { return try NumPy.read(path: path) } catch { throw UserError(error) }
}

func makeExecutor(_ model: LoadedModel, threads: Int?, fuse: Bool = true) throws -> Executor {
    do {
        return try Executor(graph: model.graph, options: .init(threads: threads ?? Executor.defaultThreads, fuse: fuse))
    } catch { throw UserError(message: "\(model.kind): \(error)") }
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
