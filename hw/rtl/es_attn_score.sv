// Attention unit, pass 1 floating point: per key j and query lane n (docs/numerics.md)
//   c = (dq[n] * dk[j]) * scale;   s = float32(dot[n][j]) * c          (binary32, RNE, in that order)
// One chain (es_i2f beside es_fmul, es_fmul, es_fmul; II = 1) serves the `ns` lanes of a key in turn:
// a key's scale beat (dk) and its dot products (from es_attn_dot) wait in small FIFOs (the scale beat
// comes first), the chain takes lane 0 .. ns-1 of the head key on consecutive cycles, es_attn_pack
// rebuilds the key's word, and the scores leave in key order.
// A key takes db + 1 >= 2 stream beats, the chain ns cycles: when ns > db + 1 (short rows, full
// sets) the caller must hold the next key's scale beat while `k_room` is low (keys taken, not yet
// through the chain: at most 6, the FIFOs hold 8).
module es_attn_score #(
    parameter int NQ = 4,
    parameter int LNQ = (NQ > 1) ? $clog2(NQ) : 1
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [31:0]      scale,
    input  logic [NQ*32-1:0] dq,
    input  logic [LNQ:0]     ns,          // lanes of the set (1..NQ)
    input  logic             k_valid,
    input  logic [31:0]      dk,
    output logic             k_room,
    input  logic             dot_valid,
    input  logic [NQ*32-1:0] dot,
    output logic             s_valid,
    output logic [NQ*32-1:0] s
);
    localparam int LM = 3, LI = 2;               // es_fmul, es_i2f latencies
    localparam int L = 1 + 2 * LM + LM;          // input register, c (two es_fmul), s (one es_fmul)

    logic k_ok, d_ok, k_in, d_in;
    logic [3:0] k_n, d_n;
    logic [31:0] dk_q;
    logic [NQ*32-1:0] dot_q;
    logic [LNQ-1:0] ln;                           // lane of the head key the chain takes next
    wire take = k_ok && d_ok;
    wire last = 32'(ln) + 32'd1 == 32'(ns);
    tlmm_fifo #(.W(32), .DEPTH(8)) u_kf (
        .clk, .rst_n, .in_valid(k_valid), .in_ready(k_in), .in_data(dk), .out_valid(k_ok),
        .out_ready(take && last), .out_data(dk_q), .count(k_n)
    );
    tlmm_fifo #(.W(NQ * 32), .DEPTH(8)) u_df (
        .clk, .rst_n, .in_valid(dot_valid), .in_ready(d_in), .in_data(dot), .out_valid(d_ok),
        .out_ready(take && last), .out_data(dot_q), .count(d_n)
    );
    // every key in the dot FIFO is in the key FIFO too (its scale beat came first)
    assign k_room = k_n < 4'd6;
    always_ff @(posedge clk) begin
        if (!rst_n) ln <= '0;
        else if (take) ln <= last ? '0 : ln + 1'b1;
    end

    // input register: the lane's operands
    logic [31:0] dq_r, dk_r, dot_r;
    logic [LNQ-1:0] ln_r;
    logic last_r;
    logic [L-1:0] v;
    wire en = take || v != '0;                    // advances while anything is in the chain
    always_ff @(posedge clk) begin
        if (!rst_n) v <= '0;
        else if (en) v <= {v[L-2:0], take};
        if (take) begin
            dq_r <= dq[32*ln +: 32];
            dk_r <= dk_q;
            dot_r <= dot_q[32*ln +: 32];
            ln_r <= ln;
            last_r <= last;
        end
    end
    logic [31:0] p1, c, df, df_d, y;
    es_fmul u_m1 (.clk, .en, .a(dq_r), .b(dk_r), .y(p1));
    es_fmul u_m2 (.clk, .en, .a(p1), .b(scale), .y(c));
    es_i2f u_cv (.clk, .en, .x(dot_r), .y(df));
    es_attn_dly #(.W(32), .N(2 * LM - LI)) u_dd (.clk, .d(df), .q(df_d));
    es_fmul u_m3 (.clk, .en, .a(df_d), .b(c), .y(y));
    logic [LNQ-1:0] ln_o;
    logic last_o;
    es_attn_dly #(.W(LNQ + 1), .N(L - 1)) u_tag (.clk, .d({ln_r, last_r}), .q({ln_o, last_o}));
    es_attn_pack #(.NQ(NQ), .W(32)) u_pk (
        .clk, .in_valid(v[L-1]), .in_lane(ln_o), .in_last(last_o), .in_data(y), .out_valid(s_valid), .out_data(s)
    );
    wire unused = &{1'b0, k_in, d_in, d_n};
endmodule
