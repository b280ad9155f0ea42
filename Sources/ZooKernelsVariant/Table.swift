import ZooKernelsBase

#if ZOO_AVX512
private let setName = "avx512"
#elseif ZOO_FMA
private let setName = "avx2"
#else
private let setName = "portable"
#endif

/// This module's kernel set.
public let kernelTable = KernelTable(
    name: setName,
    tile: { tile6x16($0) },
    dotRows: { dotRows(k: $0, x: $1, w: $2, ldw: $3, rows: $4, y: $5, bias: $6, relu: $7) },
    im2colPanel: { im2colPanel($0, $1, $2, $3) },
    maxPool: { maxPool($0, $1, $2, $3, $4, $5, $6, $7, $8) },
    relu: { relu($0, $1, $2) }
)
