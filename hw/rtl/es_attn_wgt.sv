// Attention unit, pass 3 weights: A[n] = clamp(rint(a[n] * mult[n]), 0, 32767) per query lane, with
// mult = float32(32767 / max a) (docs/numerics.md): es_fmul then es_f2i, fixed latency, no stall.
module es_attn_wgt #(
    parameter int NQ = 4
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    input  logic [NQ*32-1:0] a,
    input  logic [NQ*32-1:0] mult,
    output logic             out_valid,
    output logic [NQ*16-1:0] w
);
    localparam int L = 3 + 4;                        // LATENCY of es_fmul, es_f2i
    logic [NQ*32-1:0] p;
    logic [L-1:0] v;
    wire en = in_valid || v != '0;     // advances while anything is in the pipe
    for (genvar n = 0; n < NQ; n++) begin : g_lane
        es_fmul u_m (.clk, .en, .a(a[32*n +: 32]), .b(mult[32*n +: 32]), .y(p[32*n +: 32]));
        es_f2i #(.W(16), .LO(0), .HI(32767)) u_r (.clk, .en, .x(p[32*n +: 32]), .k(10'sd0), .y(w[16*n +: 16]));
    end
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
    end
    assign out_valid = v[L-1];
endmodule
