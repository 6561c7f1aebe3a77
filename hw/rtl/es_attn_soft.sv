// Attention unit, pass 2 (on chip): per key j and query lane n (docs/numerics.md)
//   e = exp_neg(s - max s) = exp2_neg((s - max s) * float32(log2 e));   E = rint(e * 2**15)
//   a = float32(E) * dv[j]
// es_fadd (subtract), es_fmul, es_exp2neg, es_f2i (rint(e * 2**k) with k = 15, exact scaling,
// 0..32768), es_i2f (exact), es_fmul. A key past
// the query's position (vis = 0) gives E = 0 and a = +0. Fixed latency, no stall.
module es_attn_soft #(
    parameter int NQ = 4
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    input  logic [NQ-1:0]    vis,
    input  logic [NQ*32-1:0] s,
    input  logic [31:0]      dv,
    input  logic [NQ*32-1:0] smax,
    output logic             out_valid,
    output logic [NQ*32-1:0] a,
    output logic [NQ*17-1:0] e
);
    localparam logic [31:0] LOG2E = 32'h3FB8_AA3B;   // float32(log2(e)), numerics.LOG2E
    localparam int LA = 6, LM = 3, LE = 14, LF = 4, LI = 2;   // latencies: es_fadd, es_fmul, es_exp2neg, es_f2i, es_i2f
    localparam int L0 = LA + LM + LE + LF + LI;   // a's second operand dv is needed here
    localparam int L = L0 + LM;

    logic [NQ*32-1:0] t, z, ex, af, y;
    logic [NQ*17-1:0] ei, ei_d;
    logic [31:0] dv_d;
    logic [L-1:0] v;
    wire en = in_valid || v != '0;     // advances while anything is in the pipe
    for (genvar n = 0; n < NQ; n++) begin : g_lane
        es_fadd #(.W(32)) u_sub (.clk, .en, .sub(1'b1), .a(s[32*n +: 32]), .b(smax[32*n +: 32]), .y(t[32*n +: 32]));
        es_fmul u_l2 (.clk, .en, .a(t[32*n +: 32]), .b(LOG2E), .y(z[32*n +: 32]));
        es_exp2neg u_ex (.clk, .en, .z(z[32*n +: 32]), .y(ex[32*n +: 32]));
        es_f2i #(.W(17), .LO(0), .HI(32768)) u_r (.clk, .en, .x(ex[32*n +: 32]), .k(10'sd15), .y(ei[17*n +: 17]));
        es_i2f u_cv (.clk, .en, .x(32'(ei[17*n +: 17])), .y(af[32*n +: 32]));
        es_fmul u_mv (.clk, .en, .a(af[32*n +: 32]), .b(dv_d), .y(y[32*n +: 32]));
    end
    es_attn_dly #(.W(32), .N(L0)) u_dv (.clk, .d(dv), .q(dv_d));
    es_attn_dly #(.W(NQ * 17), .N(LI + LM)) u_ed (.clk, .d(ei), .q(ei_d));
    logic [NQ-1:0] vis_d;
    es_attn_dly #(.W(NQ), .N(L)) u_vis (.clk, .d(vis), .q(vis_d));
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
    end
    assign out_valid = v[L-1];
    for (genvar n = 0; n < NQ; n++) begin : g_out
        assign a[32*n +: 32] = vis_d[n] ? y[32*n +: 32] : 32'd0;
        assign e[17*n +: 17] = vis_d[n] ? ei_d[17*n +: 17] : 17'd0;
    end
endmodule
