// Attention unit: address of one head row of token t in an f32 buffer in the tile layout
// (docs/registers.md "Memory layouts": tile j = t / MAXTOK at j*RB*MAXTOK*U, inside the tile unit
// (rb, t) at (rb*nt_j + t%MAXTOK)*U, nt_j = the tile's tokens). Head h covers the columns
// h*D .. h*D+D-1: from column c0 = h*D, i.e. unit c0/Q at float offset c0%Q (a multiple of 16, as D
// and Q are), on through the following units `stride` bytes apart (one run of D/4 beats when the tile
// holds one token; else a chunk per unit the row touches: D need not be a multiple of Q, e.g. D = 96
// at Q = 64). `addr` is the first chunk's address, `ob` its beat offset inside its unit.
// Two register stages (latency 2, free running): the products, then the sum.
module es_attn_rowaddr #(
    parameter int Q = 16,
    parameter int MAXTOK = 4,
    parameter int LMT = $clog2(MAXTOK),
    parameter int LU = $clog2(4 * Q)
) (
    input  logic        clk,
    input  logic [39:0] base,
    input  logic [31:0] rb,       // row batches (units) per token of the buffer
    input  logic [15:0] ntok,
    input  logic [15:0] t,
    input  logic [15:0] h,
    input  logic [8:0]  d,        // head row (D floats)
    output logic [39:0] addr,
    output logic [31:0] stride,
    output logic [7:0]  ob
);
    localparam int LQ = LU - 2;
    logic [39:0] base1;
    logic [47:0] tile1;
    wire unused_t = &{1'b0, tile1[47:40]};   // tiles * units stay below 2**40 bytes
    logic [23:0] hu1;                    // column h*D
    logic [15:0] ntj1, tt1;
    always_ff @(posedge clk) begin
        logic [15:0] j, left;
        j = t >> LMT;
        left = ntok - (j << LMT);
        base1 <= base;
        tile1 <= 48'(j) * 48'(rb);
        hu1 <= 24'(h) * 24'(d);
        ntj1 <= left > 16'(MAXTOK) ? 16'(MAXTOK) : left;
        tt1 <= t & 16'(MAXTOK - 1);
    end
    always_ff @(posedge clk) begin
        addr <= base1 + (40'(tile1) << (LMT + LU)) + ((40'(hu1 >> LQ) * 40'(ntj1) + 40'(tt1)) << LU)
                + (40'(hu1 & 24'(Q - 1)) << 2);
        stride <= 32'(ntj1) << LU;
        ob <= 8'((hu1 & 24'(Q - 1)) >> 2);
    end
endmodule
