// Attention unit: an N-cycle delay line (N >= 1) that carries side data beside a fixed-latency
// floating-point pipeline (it shifts every cycle: the pipelines it runs beside advance every cycle
// while anything is in them). One flat shift register (an unpacked array shifted in a loop is
// mis-simulated by Icarus 11).
module es_attn_dly #(
    parameter int W = 1,
    parameter int N = 1
) (
    input  logic         clk,
    input  logic [W-1:0] d,
    output logic [W-1:0] q
);
    logic [W*N-1:0] r;
    if (N == 1) begin : g_one
        always_ff @(posedge clk) r <= d;
    end else begin : g_many
        always_ff @(posedge clk) r <= {r[W*(N-1)-1:0], d};
    end
    assign q = r[W*N-1 -: W];
endmodule

// Attention unit (in this file beside the delay lines so that every source list of the unit, in
// files outside hw/rtl, has it; its own file once those lists name it): gathers the one-lane results of a time-shared floating-point chain back into the
// NQ-lane word of their key. The chain serves the lanes of a key in turn (lane 0 first, `in_last` on
// the key's last lane); the word leaves combinationally with that last lane. Lanes the key did not
// visit (past the query set's count) read 0, so nothing stale from an earlier set reaches SBUF or the
// value sums.
/* verilator lint_off DECLFILENAME */
module es_attn_pack #(
    parameter int NQ = 4,
    parameter int W = 32,
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic            clk,
    input  logic            in_valid,
    input  logic [LNQ-1:0]  in_lane,
    input  logic            in_last,
    input  logic [W-1:0]    in_data,
    output logic            out_valid,
    output logic [NQ*W-1:0] out_data
);
    logic [NQ*W-1:0] acc;
    always_comb begin
        out_data = in_lane == '0 ? '0 : acc;
        for (int n = 0; n < NQ; n++)
            if (32'(in_lane) == n) out_data[W*n +: W] = in_data;
    end
    assign out_valid = in_valid && in_last;
    always_ff @(posedge clk) if (in_valid) acc <= out_data;
endmodule
/* verilator lint_on DECLFILENAME */
