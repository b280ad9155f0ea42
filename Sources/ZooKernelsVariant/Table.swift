import ZooKernelsBase

#if ZOO_AVX512
private let setName = "avx512"
#elseif ZOO_FMA
private let setName = "avx2"
#else
private let setName = "portable"
#endif

#if ZOO_AVX512
private let pairKernel: KernelTable.PairTile? = { tile6x32($0, $1, $2, $3) }
private let pairSevenKernel: KernelTable.PairTile? = { tile7x32($0, $1, $2, $3) }
#else
private let pairKernel: KernelTable.PairTile? = nil
private let pairSevenKernel: KernelTable.PairTile? = nil
#endif

/// This module's kernel set.
public let kernelTable = KernelTable(
    name: setName,
    tile: { tile6x16($0) },
    tilePair: pairKernel,
    tilePairSeven: pairSevenKernel,
    dotRows: { dotRows(k: $0, x: $1, w: $2, ldw: $3, rows: $4, y: $5, bias: $6, relu: $7) },
    im2colRow: { im2colRow($0, $1, $2, $3, $4) },
    winogradInput: { winogradInput($0, $1, $2, $3) },
    winogradOutput: { winogradOutput($0, $1, $2, $3, $4, $5) },
    maxPool: { maxPool($0, $1, $2, $3, $4, $5, $6, $7, $8) },
    relu: { relu($0, $1, $2) },
    averagePool: { averagePool($0, $1, $2, $3, $4, $5, $6, $7, $8, $9) },
    adaptiveAveragePool: { adaptiveAveragePool($0, $1, $2, $3, $4, $5, $6, $7) },
    lrn: { lrn($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) },
    softmax: { softmax($0, $1, $2, $3, $4, $5) },
    batchNorm: { batchNorm($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) },
    depthwisePlanes: { depthwisePlanes($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) },
    depthwiseLanes: { depthwiseLanes($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) },
    layerNorm: { layerNorm($0, $1, $2, $3, $4, $5, $6, $7) },
    activate: { activate($0, $1, $2, $3) },
    scatterTile: { scatterTile($0, $1, $2, $3, $4, $5, $6) },
    transpose: { transpose($0, $1, $2, $3, $4, $5) }
)
