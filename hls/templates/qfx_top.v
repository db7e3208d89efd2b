`timescale 1 ns / 1 ps
// $banner
//
// in_data:  $n_in elements of $in_format, element i in bits [i*$in_elem +: $in_elem] (raw two's complement).
// out_data: $n_out elements of $out_format, element i in bits [i*$out_elem +: $out_elem].
// One vector per clock (II = 1); out_valid follows in_valid after $latency cycles.
module $top (
    input clk,
    input rst,  // synchronous, active high; clears the valid pipeline only
    input in_valid,
    input [$in_msb:0] in_data,
    output out_valid,
    output [$out_msb:0] out_data
);
    // verilator lint_off UNUSEDSIGNAL
    wire [$core_in_msb:0] core_in;
    wire [$core_out_msb:0] core_out;
    // verilator lint_on UNUSEDSIGNAL

    // The core packs each element in its own minimal width (da4ml's layout); unpack the uniform bus.
$in_assigns
$weight_assigns
    $core core (
        .clk(clk),
        .model_inp(core_in),
        .model_out(core_out)
    );

$out_assigns

    reg [$valid_msb:0] valid_pipe;
    always @(posedge clk) begin
        if (rst) valid_pipe <= 0;
        else valid_pipe <= $valid_next;
    end
    assign out_valid = valid_pipe[$valid_msb];
endmodule
