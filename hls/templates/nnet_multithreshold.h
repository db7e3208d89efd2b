#ifndef NNET_MULTITHRESHOLD_H_
#define NNET_MULTITHRESHOLD_H_

// QONNX's MultiThreshold on channels-last tensors (the channel is the last axis):
//   y = out_bias + out_scale * #{ t : x >= threshold[channel or 0][t] }
// 2^out_scale_log2 is a unit both out_scale (count_step units) and out_bias (out_bias_steps units) are
// whole multiples of, so every output is an integer level k = out_bias_steps + count * count_step times
// 2^out_scale_log2, formed exactly in level_t (which holds k and k * 2^out_scale_log2) and then assigned
// to res_T (qfx checks that it holds every level).
// Comparisons of ap_fixed values of different types are exact, so the count is the exact count.

#include "ap_fixed.h"
#include "hls_stream.h"
#include "nnet_common.h"
#include "nnet_types.h"

namespace nnet {

struct multithreshold_config {
    // IO size
    static const unsigned n_in = 10;  // elements per sample
    static const unsigned n_chan = 10; // the last axis

    // Thresholds: n_rows rows of n_thresholds each; one row (global) or one per channel
    static const unsigned n_rows = 1;
    static const unsigned n_thresholds = 1;

    // Output scaling: y = (out_bias_steps + count * count_step) * 2^out_scale_log2
    static const int out_bias_steps = 0;
    static const int out_scale_log2 = 0;
    static const int count_step = 1;

    // Resource reuse info
    static const unsigned io_type = io_parallel;
    static const unsigned reuse_factor = 1;

    // Internal data type definitions
    typedef ap_fixed<16, 6> threshold_t;
    typedef ap_uint<1> count_t;     // 0 .. n_thresholds
    typedef ap_fixed<2, 2> level_t; // out_bias_steps + count, and that times 2^out_scale_log2
};

template <class data_T, typename CONFIG_T>
typename CONFIG_T::level_t multithreshold_level(data_T x, unsigned chan,
                                                typename CONFIG_T::threshold_t thresholds[CONFIG_T::n_rows *
                                                                                          CONFIG_T::n_thresholds]) {
    #pragma HLS INLINE
    const unsigned row = (CONFIG_T::n_rows == 1) ? 0 : chan;
    typename CONFIG_T::count_t count = 0;
MultiThresholdCompare:
    for (unsigned t = 0; t < CONFIG_T::n_thresholds; t++) {
        #pragma HLS UNROLL
        if (x >= thresholds[row * CONFIG_T::n_thresholds + t])
            count++;
    }
    typename CONFIG_T::level_t level = CONFIG_T::out_bias_steps + int(count) * CONFIG_T::count_step;
    // A shift of an ap_fixed keeps its type: exact, as level_t has the bits on both sides.
    if (CONFIG_T::out_scale_log2 > 0)
        level <<= CONFIG_T::out_scale_log2;
    else if (CONFIG_T::out_scale_log2 < 0)
        level >>= -CONFIG_T::out_scale_log2;
    return level;
}

// *************************************************
//       io_parallel: one sample, fully unrolled
// *************************************************
template <class data_T, class res_T, typename CONFIG_T>
void multithreshold(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
                    typename CONFIG_T::threshold_t thresholds[CONFIG_T::n_rows * CONFIG_T::n_thresholds]) {
    // Use a function_instantiate in case it helps to explicitly optimize unchanging thresholds
    #pragma HLS function_instantiate variable=thresholds
    #pragma HLS PIPELINE
    #pragma HLS ARRAY_PARTITION variable=thresholds complete

MultiThresholdLoop:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        res[i] = multithreshold_level<data_T, CONFIG_T>(data[i], i % CONFIG_T::n_chan, thresholds);
    }
}

// *************************************************
//       io_stream: one packed word per cycle
// *************************************************
template <class data_T, class res_T, typename CONFIG_T>
void multithreshold(hls::stream<data_T> &data, hls::stream<res_T> &res,
                    typename CONFIG_T::threshold_t thresholds[CONFIG_T::n_rows * CONFIG_T::n_thresholds]) {
    #pragma HLS ARRAY_PARTITION variable=thresholds complete

MultiThresholdStreamLoop:
    for (unsigned i = 0; i < CONFIG_T::n_in / data_T::size; i++) {
        #pragma HLS PIPELINE

        data_T in_data = data.read();
        res_T out_data;
        PRAGMA_DATA_PACK(out_data)

    MultiThresholdPack:
        for (unsigned j = 0; j < data_T::size; j++) {
            #pragma HLS UNROLL
            // A word holds whole pixels (size a multiple of n_chan) in hls4ml's channels-last streams,
            // which makes the channel a constant per j.
            const unsigned chan = (data_T::size % CONFIG_T::n_chan == 0) ? j % CONFIG_T::n_chan
                                                                           : (i * data_T::size + j) % CONFIG_T::n_chan;
            out_data[j] =
                multithreshold_level<typename data_T::value_type, CONFIG_T>(in_data[j], chan, thresholds);
        }

        res.write(out_data);
    }
}

} // namespace nnet

#endif
