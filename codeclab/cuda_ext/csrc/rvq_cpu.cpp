// Fused residual vector quantization on the CPU: nearest-code search without an N x K distance matrix.
//
// Semantics (shared by every codeclab backend): the code of a row is the exact argmin over k of
// ||x - c_k||^2, ties to the lowest index. Inputs are first centred on the codebook mean mu (x' = fl(x - mu),
// c' = fl(c - mu); distances do not change, and the screen's error then scales with the data's spread, not its
// offset). A fast fp32 screen computes s_k = ||c'_k||^2 - 2 x'.c'_k and keeps the best and second-best value
// per row. With the rigorous bound (any summation order; centring's rounding included)
//     |s_k + ||x'||^2 - ||x - c_k||^2| <= E = (gamma_{D+2} + 4.02 u) (||x'||^2 + 2 max_k ||c'_k||^2),
//     gamma_n = n u / (1 - n u), u = 2^-24,
// a runner-up more than 2E above the best proves the best is the exact argmin. Otherwise (near-ties,
// duplicate codes, non-finite screens) the codes whose screen lies within 2E of the best, which must include
// the exact argmin, are re-ranked in fp64 on the original values. The answer therefore does not depend on
// the screen's summation order, the thread count, the batch shape or the backend.
//
// Layout: the codebook is packed in panels of 16 codes, [D][16] per panel, so that a micro-kernel of 6 rows
// x 16 codes keeps 12 accumulators of 8 floats in registers (GCC vector extensions: AVX2/FMA with
// -march=native, NEON or SSE elsewhere). Rows are split over OpenMP threads in blocks; each block runs all
// stages of the residual search while its residuals sit in cache.
//
// C ABI, called through ctypes. Every function returns 0 on success, a negative value on failure.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>
#include <vector>

namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

constexpr int NR = 16;        // codes per panel
constexpr int MR = 6;         // rows per micro-kernel call
constexpr int ROW_BLOCK = 96; // rows per thread task
constexpr double U = 5.9604644775390625e-08;  // 2^-24

struct AlignedFloats {
    float* data = nullptr;
    explicit AlignedFloats(size_t n) {
        size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
        data = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
        if (!data) throw std::bad_alloc();
    }
    ~AlignedFloats() { std::free(data); }
    AlignedFloats(const AlignedFloats&) = delete;
    AlignedFloats& operator=(const AlignedFloats&) = delete;
};

// One codebook packed for the micro-kernel, plus what the bound and the exact re-rank need.
struct Packed {
    int64_t K, D, P;
    const float* raw;  // [K, D] row-major, as given
    AlignedFloats panels;  // [P][D][NR], centred on `mean`
    AlignedFloats csq;     // [P * NR] squared norms of the centred codes; +inf for padding, so it never wins
    std::vector<float> mean;  // [D] codebook mean (fp64 sum, rounded to fp32)
    std::vector<char> first;  // [K] 0 for a code bit-identical to an earlier one: it can never be the argmin
    double max_csq;

    Packed(const float* cb, int64_t K_, int64_t D_)
        : K(K_), D(D_), P((K_ + NR - 1) / NR), raw(cb), panels(size_t((K_ + NR - 1) / NR) * D_ * NR),
          csq(size_t((K_ + NR - 1) / NR) * NR), mean(size_t(D_), 0.0f), first(size_t(K_), 1), max_csq(0.0) {
        // duplicates (common after k-means on small batches) would otherwise make every near-tie re-rank them all
        std::unordered_map<uint64_t, std::vector<int64_t>> seen;
        seen.reserve(size_t(K));
        std::vector<double> sum(size_t(D), 0.0);
        for (int64_t k = 0; k < K; ++k) {
            const float* row = cb + k * D;
            uint64_t h = 0x9E3779B97F4A7C15ull;
            for (int64_t d = 0; d < D; ++d) {
                sum[d] += row[d];
                uint32_t bits;
                std::memcpy(&bits, row + d, sizeof(bits));
                h = (h ^ bits) * 0xFF51AFD7ED558CCDull;
                h ^= h >> 29;
            }
            auto& same = seen[h];
            for (int64_t j : same)
                if (std::memcmp(cb + j * D, row, sizeof(float) * D) == 0) { first[k] = 0; break; }
            if (first[k]) same.push_back(k);
        }
        for (int64_t d = 0; d < D; ++d) mean[d] = float(sum[d] / double(K));
        for (int64_t p = 0; p < P; ++p) {
            float* pan = panels.data + p * D * NR;
            for (int64_t j = 0; j < NR; ++j) {
                int64_t k = p * NR + j;
                float s = 0.0f;
                for (int64_t d = 0; d < D; ++d) {
                    float v = k < K ? cb[k * D + d] - mean[d] : 0.0f;
                    pan[d * NR + j] = v;
                    s += v * v;
                }
                csq.data[p * NR + j] = k < K ? s : std::numeric_limits<float>::infinity();
                if (k < K) max_csq = std::max(max_csq, double(s));
            }
        }
    }
};

inline v8f splat(float v) { return v8f{v, v, v, v, v, v, v, v}; }
inline v8f load8(const float* p) { v8f r; std::memcpy(&r, p, sizeof(r)); return r; }
inline v8i iota8(int32_t base) { return v8i{base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7}; }

// Screen MR rows (x rows given by pointers) against every code: best value, its index, second-best value.
void screen(const float* const* rows, const Packed& pk, float* best1, int32_t* idx1, float* best2) {
    const float inf = std::numeric_limits<float>::infinity();
    v8f b1[MR][2], b2[MR][2];
    v8i i1[MR][2];
    for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) { b1[r][h] = splat(inf); b2[r][h] = splat(inf); i1[r][h] = iota8(0); }
    const int64_t D = pk.D;
    for (int64_t p = 0; p < pk.P; ++p) {
        const float* pan = pk.panels.data + p * D * NR;
        v8f acc[MR][2];
        for (int r = 0; r < MR; ++r) { acc[r][0] = splat(0.0f); acc[r][1] = splat(0.0f); }
        for (int64_t d = 0; d < D; ++d) {
            const v8f c0 = load8(pan + d * NR), c1 = load8(pan + d * NR + 8);
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) {
                const v8f a = splat(rows[r][d]);
                acc[r][0] += a * c0;
                acc[r][1] += a * c1;
            }
        }
        const v8f cs[2] = {load8(pk.csq.data + p * NR), load8(pk.csq.data + p * NR + 8)};
        const v8i idx[2] = {iota8(int32_t(p * NR)), iota8(int32_t(p * NR + 8))};
        for (int r = 0; r < MR; ++r) {
            for (int h = 0; h < 2; ++h) {
                const v8f dist = cs[h] - (acc[r][h] + acc[r][h]);
                const v8i better = dist < b1[r][h];  // strict: the earlier (lower) index keeps ties
                b2[r][h] = better ? b1[r][h] : (dist < b2[r][h] ? dist : b2[r][h]);
                b1[r][h] = better ? dist : b1[r][h];
                i1[r][h] = better ? idx[h] : i1[r][h];
            }
        }
    }
    for (int r = 0; r < MR; ++r) {
        float v[16], s[16];
        int32_t ix[16];
        std::memcpy(v, &b1[r][0], 32); std::memcpy(v + 8, &b1[r][1], 32);
        std::memcpy(s, &b2[r][0], 32); std::memcpy(s + 8, &b2[r][1], 32);
        std::memcpy(ix, &i1[r][0], 32); std::memcpy(ix + 8, &i1[r][1], 32);
        int w = 0;
        for (int l = 1; l < 16; ++l)
            if (v[l] < v[w] || (v[l] == v[w] && ix[l] < ix[w])) w = l;
        float second = s[w];
        for (int l = 0; l < 16; ++l)
            if (l != w) second = std::min(second, v[l]);
        best1[r] = v[w];
        idx1[r] = ix[w];
        best2[r] = second;
    }
}

typedef double v4d __attribute__((vector_size(32)));

// sum_d (x_d - c_d)^2 in fp64: four lanes over d mod 4, then the lanes in order (a fixed order).
double exact_distance(const float* x, const float* c, int64_t D) {
    v4d acc = {0.0, 0.0, 0.0, 0.0};
    int64_t d = 0;
    for (; d + 4 <= D; d += 4) {
        const v4d diff = {double(x[d]) - double(c[d]), double(x[d + 1]) - double(c[d + 1]),
                          double(x[d + 2]) - double(c[d + 2]), double(x[d + 3]) - double(c[d + 3])};
        acc += diff * diff;
    }
    double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; d < D; ++d) {
        const double diff = double(x[d]) - double(c[d]);
        s += diff * diff;
    }
    return s;
}

// Exact argmin of ||x - c_k||^2 in fp64 (ties to the lowest index) among the codes whose fp32 screen value
// is at most `threshold` = best screen + 2E: the bound guarantees the exact argmin is among them and every
// other code is strictly farther. A non-finite threshold re-ranks every code.
int64_t exact_argmin(const float* x, const float* xc, const Packed& pk, double threshold) {
    const bool all = !std::isfinite(threshold);
    double best = std::numeric_limits<double>::infinity();
    int64_t arg = 0;
    const int64_t D = pk.D;
    for (int64_t p = 0; p < pk.P; ++p) {
        float screen[NR];
        if (!all) {
            const float* pan = pk.panels.data + p * D * NR;
            v8f a0 = splat(0.0f), a1 = splat(0.0f);
            for (int64_t d = 0; d < D; ++d) {
                const v8f xv = splat(xc[d]);
                a0 += xv * load8(pan + d * NR);
                a1 += xv * load8(pan + d * NR + 8);
            }
            const v8f s0 = load8(pk.csq.data + p * NR) - (a0 + a0), s1 = load8(pk.csq.data + p * NR + 8) - (a1 + a1);
            std::memcpy(screen, &s0, 32);
            std::memcpy(screen + 8, &s1, 32);
        }
        for (int j = 0; j < NR; ++j) {
            const int64_t k = p * NR + j;
            if (k >= pk.K || !pk.first[k] || (!all && !(double(screen[j]) <= threshold))) continue;
            const double dist = exact_distance(x, pk.raw + k * D, D);
            if (dist < best) { best = dist; arg = k; }
        }
    }
    return arg;
}

// Codes of MR rows (fewer at a tail: `count`) for one codebook. `centred` is scratch space [MR * D].
void assign(const float* const* rows, int count, const Packed& pk, int64_t* codes, float* centred) {
    const int64_t D = pk.D;
    const float* cptrs[MR];
    for (int r = 0; r < MR; ++r) {
        float* c = centred + r * D;
        for (int64_t d = 0; d < D; ++d) c[d] = rows[r][d] - pk.mean[d];
        cptrs[r] = c;
    }
    float best1[MR], best2[MR];
    int32_t idx1[MR];
    screen(cptrs, pk, best1, idx1, best2);
    const double gamma = ((D + 2) * U / (1.0 - (D + 2) * U) + 4.02 * U) * 1.0001;
    for (int r = 0; r < count; ++r) {
        double xsq = 0.0;
        for (int64_t d = 0; d < D; ++d) xsq += double(cptrs[r][d]) * double(cptrs[r][d]);
        const double bound = gamma * (xsq + 2.0 * pk.max_csq) + 1e-37;
        const double gap = double(best2[r]) - double(best1[r]);
        // `gap > 2 bound` is false for NaN, so non-finite screens also take the exact path
        codes[r] = (gap > 2.0 * bound) ? int64_t(idx1[r])
                                       : exact_argmin(rows[r], cptrs[r], pk, double(best1[r]) + 2.0 * bound);
    }
}

template <typename Fn>
int guarded(Fn&& fn) {
    try {
        fn();
        return 0;
    } catch (const std::bad_alloc&) {
        return -2;
    } catch (...) {
        return -1;
    }
}

}  // namespace

extern "C" {

int cc_abi_version() { return 1; }

// x [N, D] fp32 (read-only), codebooks [Q, K, D] fp32 -> codes [N, n_q] int64.
int cc_rvq_encode(const float* x, int64_t N, int64_t D, const float* codebooks, int64_t Q, int64_t K, int64_t n_q,
                  int64_t* codes, int32_t threads) {
    if (N < 0 || D < 1 || K < 1 || n_q < 1 || n_q > Q) return -3;
    return guarded([&] {
        std::vector<Packed*> packed(n_q, nullptr);
        struct Cleanup { std::vector<Packed*>& v; ~Cleanup() { for (auto* p : v) delete p; } } cleanup{packed};
        int pack_failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(threads, 1))
        for (int64_t q = 0; q < n_q; ++q) {
            try {
                packed[q] = new Packed(codebooks + q * K * D, K, D);
            } catch (...) {
#pragma omp atomic write
                pack_failed = 1;
            }
        }
        if (pack_failed) throw std::bad_alloc();
        const int64_t blocks = (N + ROW_BLOCK - 1) / ROW_BLOCK;
        int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(threads, 1))
        for (int64_t b = 0; b < blocks; ++b) {
            try {
                const int64_t first = b * ROW_BLOCK, rows = std::min<int64_t>(ROW_BLOCK, N - first);
                std::vector<float> residual(size_t(rows) * D);
                std::memcpy(residual.data(), x + first * D, sizeof(float) * rows * D);
                std::vector<float> zeros(size_t(D), 0.0f), centred(size_t(MR) * D);
                int64_t out[MR];
                for (int64_t q = 0; q < n_q; ++q) {
                    const Packed& pk = *packed[q];
                    for (int64_t r0 = 0; r0 < rows; r0 += MR) {
                        const int count = int(std::min<int64_t>(MR, rows - r0));
                        const float* ptrs[MR];
                        for (int r = 0; r < MR; ++r) ptrs[r] = r < count ? residual.data() + (r0 + r) * D : zeros.data();
                        assign(ptrs, count, pk, out, centred.data());
                        for (int r = 0; r < count; ++r) {
                            codes[(first + r0 + r) * n_q + q] = out[r];
                            float* res = residual.data() + (r0 + r) * D;
                            const float* c = pk.raw + out[r] * D;
                            for (int64_t d = 0; d < D; ++d) res[d] -= c[d];
                        }
                    }
                }
            } catch (...) {
#pragma omp atomic write
                failed = 1;
            }
        }
        if (failed) throw std::bad_alloc();
    });
}

// Nearest codes plus per-code counts and sums, in O(N*D + K*D) memory: rows are grouped by code with a
// stable counting sort, and each code's rows are summed in row order in fp64 (deterministic: the result does
// not depend on the thread count), then rounded to fp32.
int cc_vq_assign_stats(const float* x, int64_t N, int64_t D, const float* codebook, int64_t K, int64_t* codes,
                       float* counts, float* sums, int32_t threads) {
    if (N < 0 || D < 1 || K < 1) return -3;
    int rc = cc_rvq_encode(x, N, D, codebook, 1, K, 1, codes, threads);
    if (rc != 0) return rc;
    return guarded([&] {
        std::vector<int64_t> start(static_cast<size_t>(K) + 1, 0), order(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n) ++start[codes[n] + 1];
        for (int64_t k = 0; k < K; ++k) {
            counts[k] = float(start[k + 1]);
            start[k + 1] += start[k];
        }
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t n = 0; n < N; ++n) order[fill[codes[n]]++] = n;
#pragma omp parallel num_threads(std::max(threads, 1))
        {
            std::vector<double> acc(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 64)
            for (int64_t k = 0; k < K; ++k) {
                std::fill(acc.begin(), acc.end(), 0.0);
                for (int64_t i = start[k]; i < start[k + 1]; ++i) {
                    const float* row = x + order[i] * D;
                    for (int64_t d = 0; d < D; ++d) acc[d] += row[d];
                }
                for (int64_t d = 0; d < D; ++d) sums[k * D + d] = float(acc[d]);
            }
        }
    });
}

// codes [N, n_q] int64, codebooks [Q, K, D] -> out [N, D] = sum over q of codebooks[q][codes[:, q]], summed in
// stage order in fp32 (the same arithmetic as the torch reference).
int cc_rvq_decode(const int64_t* codes, int64_t N, int64_t n_q, const float* codebooks, int64_t Q, int64_t K, int64_t D,
                  float* out, int32_t threads) {
    if (N < 0 || D < 1 || K < 1 || n_q < 1 || n_q > Q) return -3;
    for (int64_t i = 0; i < N * n_q; ++i)
        if (codes[i] < 0 || codes[i] >= K) return -4;
#pragma omp parallel for schedule(static) num_threads(std::max(threads, 1))
    for (int64_t n = 0; n < N; ++n) {
        float* o = out + n * D;
        for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
        for (int64_t q = 0; q < n_q; ++q) {
            const float* c = codebooks + (q * K + codes[n * n_q + q]) * D;
            for (int64_t d = 0; d < D; ++d) o[d] += c[d];
        }
    }
    return 0;
}

}  // extern "C"
