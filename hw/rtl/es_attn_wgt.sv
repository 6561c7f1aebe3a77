// Attention unit, pass 3 weights: A[n] = clamp(rint(a[n] * mult[n]), 0, 32767) per query lane, with
// mult = float32(32767 / max a) (docs/numerics.md): one chain (es_fmul then es_f2i, II = 1) serves
// one (key, lane) per cycle, the caller presenting a key's lanes on consecutive cycles (`in_last` on
// the last); the key's word of weights leaves with its last lane (es_attn_pack). Fixed latency, no
// stall.
module es_attn_wgt #(
    parameter int NQ = 4,
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    input  logic [LNQ-1:0]   in_lane,
    input  logic             in_last,
    input  logic [31:0]      a,
    input  logic [31:0]      mult,
    output logic             out_valid,
    output logic [NQ*16-1:0] w
);
    localparam int L = 1 + 3 + 4;                    // input register, es_fmul, es_f2i
    logic [31:0] a_r, m_r, p;
    logic [15:0] y;
    logic [LNQ-1:0] ln_r, ln_d;
    logic last_r, last_d;
    logic [L-1:0] v;
    wire en = in_valid || v != '0;     // advances while anything is in the pipe
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], in_valid};
        if (in_valid) begin
            a_r <= a;
            m_r <= mult;
            ln_r <= in_lane;
            last_r <= in_last;
        end
    end
    es_fmul u_m (.clk, .en, .a(a_r), .b(m_r), .y(p));
    es_f2i #(.W(16), .LO(0), .HI(32767)) u_r (.clk, .en, .x(p), .k(10'sd0), .y(y));
    es_attn_dly #(.W(LNQ + 1), .N(L - 1)) u_tag (.clk, .d({ln_r, last_r}), .q({ln_d, last_d}));
    es_attn_pack #(.NQ(NQ), .W(16)) u_pk (
        .clk, .in_valid(v[L-1]), .in_lane(ln_d), .in_last(last_d), .in_data(y), .out_valid, .out_data(w)
    );
endmodule
