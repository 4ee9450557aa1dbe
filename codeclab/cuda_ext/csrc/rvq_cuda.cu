// Fused residual vector quantization on CUDA (sm_80+): nearest-code search without an N x K matrix.
//
// Same semantics as csrc/rvq_cpu.cpp and reference.py: exact argmin of ||x - c_k||^2, ties to the lowest
// index. Per stage:
//   1. rvq_screen:   64 rows x 64 codes per block, 4 x 4 per thread, inputs centred on the codebook mean;
//                    each row's best screen value, its index and the second-best value.
//   2. rvq_finalize: one warp per row. If the runner-up is more than 2E above the best (E: the bound in the
//                    CPU file), the best is the exact argmin; otherwise codes whose fp32 screen lies within
//                    2E of the best are re-ranked in fp64 on the original values.
//   3. rvq_update:   residual -= codebook[code].
// Host entry points take device pointers and a cudaStream_t and return a cudaError_t value (0 = success).

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace {

constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4, THREADS = 256;

__global__ void __launch_bounds__(THREADS) rvq_screen(const float* __restrict__ res, const float* __restrict__ mean,
                                                      const float* __restrict__ cbc, const float* __restrict__ csq,
                                                      int N, int D, int K, float* __restrict__ best1,
                                                      int* __restrict__ idx1, float* __restrict__ best2) {
    __shared__ float xs[BK][BM + 4];
    __shared__ float cs[BK][BN + 4];
    __shared__ float rb1[BM][BN / TN];
    __shared__ float rb2[BM][BN / TN];
    __shared__ int ri[BM][BN / TN];
    const int tid = threadIdx.x;
    const int tr = tid / (BN / TN);  // row group 0..15
    const int tc = tid % (BN / TN);  // code group 0..15
    const int row0 = blockIdx.x * BM;
    float b1[TM], b2[TM];
    int i1[TM];
#pragma unroll
    for (int i = 0; i < TM; ++i) { b1[i] = INFINITY; b2[i] = INFINITY; i1[i] = 0; }

    for (int k0 = 0; k0 < K; k0 += BN) {
        float acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
        for (int d0 = 0; d0 < D; d0 += BK) {
            for (int e = tid; e < BM * BK; e += THREADS) {
                const int rr = e / BK, dd = e % BK, n = row0 + rr, d = d0 + dd;
                xs[dd][rr] = (n < N && d < D) ? res[(size_t)n * D + d] - mean[d] : 0.0f;
            }
            for (int e = tid; e < BN * BK; e += THREADS) {
                const int cc = e / BK, dd = e % BK, k = k0 + cc, d = d0 + dd;
                cs[dd][cc] = (k < K && d < D) ? cbc[(size_t)k * D + d] : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int dd = 0; dd < BK; ++dd) {
                float a[TM], b[TN];
#pragma unroll
                for (int i = 0; i < TM; ++i) a[i] = xs[dd][tr * TM + i];
#pragma unroll
                for (int j = 0; j < TN; ++j) b[j] = cs[dd][tc * TN + j];
#pragma unroll
                for (int i = 0; i < TM; ++i)
#pragma unroll
                    for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
            __syncthreads();
        }
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int k = k0 + tc * TN + j;
            if (k >= K) continue;
            const float c = csq[k];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const float dist = c - (acc[i][j] + acc[i][j]);
                if (dist < b1[i]) { b2[i] = b1[i]; b1[i] = dist; i1[i] = k; }  // k rises per thread: ties keep the lowest
                else if (dist < b2[i]) { b2[i] = dist; }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        rb1[tr * TM + i][tc] = b1[i];
        rb2[tr * TM + i][tc] = b2[i];
        ri[tr * TM + i][tc] = i1[i];
    }
    __syncthreads();
    if (tid < BM && row0 + tid < N) {
        const int r = tid;
        int w = 0;
        for (int t = 1; t < BN / TN; ++t)
            if (rb1[r][t] < rb1[r][w] || (rb1[r][t] == rb1[r][w] && ri[r][t] < ri[r][w])) w = t;
        float second = rb2[r][w];
        for (int t = 0; t < BN / TN; ++t)
            if (t != w) second = fminf(second, rb1[r][t]);
        best1[row0 + r] = rb1[r][w];
        idx1[row0 + r] = ri[r][w];
        best2[row0 + r] = second;
    }
}

__device__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return __shfl_sync(0xffffffffu, v, 0);
}

__global__ void rvq_finalize(const float* __restrict__ res, const float* __restrict__ mean, const float* __restrict__ cbc,
                             const float* __restrict__ cbraw, const float* __restrict__ csq,
                             const unsigned char* __restrict__ first, int N, int D, int K, double gamma, double max_csq,
                             const float* __restrict__ best1, const int* __restrict__ idx1,
                             const float* __restrict__ best2, int64_t* __restrict__ codes, int q, int n_q) {
    const int n = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (n >= N) return;  // whole warps exit together: blockDim is a multiple of 32
    const float* x = res + (size_t)n * D;
    double xsq = 0.0;
    for (int d = lane; d < D; d += 32) {
        const float xc = x[d] - mean[d];
        xsq += (double)xc * (double)xc;
    }
    xsq = warp_sum(xsq);
    const double bound = gamma * (xsq + 2.0 * max_csq) + 1e-37;
    const double gap = (double)best2[n] - (double)best1[n];
    int64_t code = idx1[n];
    if (!(gap > 2.0 * bound)) {
        double threshold = (double)best1[n] + 2.0 * bound;
        for (int pass = 0; pass < 2; ++pass) {
            const bool all = pass == 1 || !isfinite(threshold);
            double best = INFINITY;
            int arg = K;
            for (int k = lane; k < K; k += 32) {
                if (!first[k]) continue;
                if (!all) {
                    float dot = 0.0f;
                    for (int d = 0; d < D; ++d) dot = fmaf(x[d] - mean[d], cbc[(size_t)k * D + d], dot);
                    const float s = csq[k] - (dot + dot);
                    if (!((double)s <= threshold)) continue;
                }
                const float* c = cbraw + (size_t)k * D;
                double dist = 0.0;
                for (int d = 0; d < D; ++d) {
                    const double diff = (double)x[d] - (double)c[d];
                    dist += diff * diff;
                }
                if (dist < best) { best = dist; arg = k; }
            }
            for (int off = 16; off > 0; off >>= 1) {
                const double ob = __shfl_down_sync(0xffffffffu, best, off);
                const int oa = __shfl_down_sync(0xffffffffu, arg, off);
                if (ob < best || (ob == best && oa < arg)) { best = ob; arg = oa; }
            }
            arg = __shfl_sync(0xffffffffu, arg, 0);
            if (arg < K) { code = arg; break; }  // else no candidate passed (cannot happen by the bound): all codes
        }
    }
    if (lane == 0) codes[(size_t)n * n_q + q] = code;
}

__global__ void rvq_update(float* __restrict__ res, const float* __restrict__ cbraw, const int64_t* __restrict__ codes,
                           int N, int D, int q, int n_q) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * D) return;
    const size_t n = i / D, d = i % D;
    res[i] -= cbraw[(size_t)codes[n * n_q + q] * D + d];
}

}  // namespace

extern "C" {

int cc_cuda_abi_version() { return 1; }

// One stage of the residual search on `res` [N, D] (updated in place unless update == 0): codes[:, q].
// cbc: centred codebook [K, D]; cbraw: original codebook; csq: squared norms of cbc; mean [D]; first [K];
// best1/idx1/best2: scratch [N].
int cc_rvq_stage(float* res, int N, int D, const float* mean, const float* cbc, const float* cbraw, const float* csq,
                 const unsigned char* first, int K, double gamma, double max_csq, float* best1, int* idx1, float* best2,
                 int64_t* codes, int q, int n_q, int update, void* stream_ptr) {
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    if (N <= 0) return 0;
    rvq_screen<<<(N + BM - 1) / BM, THREADS, 0, stream>>>(res, mean, cbc, csq, N, D, K, best1, idx1, best2);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return (int)err;
    const int warps_per_block = 8;
    rvq_finalize<<<(N + warps_per_block - 1) / warps_per_block, 32 * warps_per_block, 0, stream>>>(
        res, mean, cbc, cbraw, csq, first, N, D, K, gamma, max_csq, best1, idx1, best2, codes, q, n_q);
    err = cudaGetLastError();
    if (err != cudaSuccess) return (int)err;
    if (update) {
        const size_t total = (size_t)N * D;
        rvq_update<<<(unsigned)((total + 255) / 256), 256, 0, stream>>>(res, cbraw, codes, N, D, q, n_q);
        err = cudaGetLastError();
    }
    return (int)err;
}

}  // extern "C"
