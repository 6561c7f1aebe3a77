// Attention unit, pass 2 (on chip): per key j and query lane n (docs/numerics.md)
//   e = exp_neg(s - max s) = exp2_neg((s - max s) * float32(log2 e));   E = rint(e * 2**15)
//   a = float32(E) * dv[j]
// es_fadd (subtract), es_fmul, es_exp2neg, then e * 2**15 as an exponent add (e is 0 or a normal
// number >= 2**-64, so the product is exact), es_f2i (0..32768), es_i2f (exact), es_fmul. A key past
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
    localparam int LA = 5, LM = 3, LE = es_exp2neg_pkg::LATENCY, LF = es_f2i_pkg::LATENCY, LI = 2;
    localparam int L0 = LA + LM + LE + 1 + LF + LI;   // a's second operand dv is needed here
    localparam int L = L0 + LM;

    logic [NQ*32-1:0] t, z, ex, af, y;
    logic [NQ*32-1:0] e15, ei, ei_d;
    logic [31:0] dv_d;
    for (genvar n = 0; n < NQ; n++) begin : g_lane
        es_fadd #(.W(32)) u_sub (.clk, .en(1'b1), .sub(1'b1), .a(s[32*n +: 32]), .b(smax[32*n +: 32]), .y(t[32*n +: 32]));
        es_fmul u_l2 (.clk, .en(1'b1), .a(t[32*n +: 32]), .b(LOG2E), .y(z[32*n +: 32]));
        es_exp2neg u_ex (.clk, .en(1'b1), .z(z[32*n +: 32]), .y(ex[32*n +: 32]));
        always_ff @(posedge clk)
            e15[32*n +: 32] <= ex[32*n +: 31] == 31'd0 ? 32'd0 : ex[32*n +: 32] + (32'd15 << 23);
        es_f2i u_r (.clk, .en(1'b1), .x(e15[32*n +: 32]), .lo(32'sd0), .hi(32'sd32768), .y(ei[32*n +: 32]));
        es_i2f u_cv (.clk, .en(1'b1), .x(ei[32*n +: 32]), .y(af[32*n +: 32]));
        es_fmul u_mv (.clk, .en(1'b1), .a(af[32*n +: 32]), .b(dv_d), .y(y[32*n +: 32]));
    end
    es_attn_dly #(.W(32), .N(L0)) u_dv (.clk, .d(dv), .q(dv_d));
    es_attn_dly #(.W(NQ * 32), .N(LI + LM)) u_ed (.clk, .d(ei), .q(ei_d));
    logic [NQ-1:0] vis_d;
    es_attn_dly #(.W(NQ), .N(L)) u_vis (.clk, .d(vis), .q(vis_d));
    logic [L-1:0] v;
    always_ff @(posedge clk) v <= {v[L-2:0], rst_n && in_valid};
    assign out_valid = v[L-1];
    for (genvar n = 0; n < NQ; n++) begin : g_out
        assign a[32*n +: 32] = vis_d[n] ? y[32*n +: 32] : 32'd0;
        assign e[17*n +: 17] = vis_d[n] ? ei_d[32*n +: 17] : 17'd0;
    end
endmodule
