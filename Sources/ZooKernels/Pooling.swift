/// 2-D pooling over NCHW f32 tensors, PyTorch semantics (aten/src/ATen/native/Pool.h and
/// AveragePool2d.cpp): windows start at `o·stride − padTop`; padding never wins a max; average pooling
/// divides by the window clipped to the padded input (`countIncludePad`) or to the input itself.
/// Planes (n, c) are independent and split across the pool's threads; results do not depend on the
/// thread count.
public enum PoolKernels {
    /// Max pooling with the selected kernel set (`KernelTable.maxPool`).
    public static func maxPool(_ shape: Pool2DShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               planes: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, pool: ThreadPool,
                               kernels: KernelSet = .active) {
        kernels.table.maxPool(shape, input, output, planes, inHeight, inWidth, outHeight, outWidth, pool)
    }

    /// Average pooling with the selected kernel set (`KernelTable.averagePool`; plain twin
    /// `ReferenceKernels.averagePool`).
    public static func averagePool(_ shape: Pool2DShape, countIncludePad: Bool, input: UnsafePointer<Float>,
                                   output: UnsafeMutablePointer<Float>, planes: Int, inHeight: Int, inWidth: Int,
                                   outHeight: Int, outWidth: Int, pool: ThreadPool, kernels: KernelSet = .active) {
        kernels.table.averagePool(shape, countIncludePad, input, output, planes, inHeight, inWidth, outHeight, outWidth, pool)
    }

    /// torch.nn.AdaptiveAvgPool2d with the selected kernel set (`KernelTable.adaptiveAveragePool`; plain
    /// twin `ReferenceKernels.adaptiveAveragePool`). Global average pooling is the 1×1 case.
    public static func adaptiveAveragePool(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, planes: Int,
                                           inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, pool: ThreadPool,
                                           kernels: KernelSet = .active) {
        kernels.table.adaptiveAveragePool(input, output, planes, inHeight, inWidth, outHeight, outWidth, pool)
    }
}
