// TLMM weight-code decode: one stream beat of L weight codes in, L table indices and signs out (one
// register stage, valid/ready, sideband d_user rides along).
//
// A ternary table stores only its lower half (tlmm_table_builder: T[3**G - 1 - c] = -T[c]), so a
// ternary index i > Z = (3**G - 1)/2 (the all-zero pattern) becomes 3**G - 1 - i with the sign bit
// set: the lane reads the stored entry and negates it. d_idx holds the folded index (IW bits), d_sgn
// one sign per lane.
//
// Code formats (one CB-bit slot per lane, lane l at bits [l*CB +: CB]):
//   ternary (bitserial = 0): the G-index code of edgestream.formats.ternary.pack_gindex,
//     c = sum_i (t_i + 1) * 3**i in [0, 3**G). For G = 5 this is exactly the 1.6 bpw base-3 byte
//     (pack_base3). A code >= 3**G is invalid: it decodes to the all-zero pattern and raises d_bad.
//   bit-serial (bitserial = 1): a binary group code of edgestream.tlmm.bit_planes,
//     c = sum_i bit_i * 2**i in the low G bits of the slot (higher slot bits are ignored).
// With a ternary table (TABLE_BINARY = 0) a binary code maps onto the ternary pattern whose trits are
// its bits, index Z + sum_i bit_i * 3**i, whose table entry is sum_i bit_i * a_i = B[c]: bit-serial
// weights use the very same table and lanes. Folded, that is index Z - sum_i bit_i * 3**i with the
// sign set (c = 0: Z, the zero entry, sign clear). With a binary-only table (TABLE_BINARY = 1, 2**G
// entries, no symmetry) the index is the code itself, the sign 0, and bitserial must be 1.
module tlmm_wdecode #(
    parameter int G = 5,
    parameter int L = 16,             // codes per beat (Q * T in the engine)
    parameter int TABLE_BINARY = 0,
    parameter int UW = 1,
    // derived: do not override
    parameter int P = (TABLE_BINARY != 0) ? 2 ** G : 3 ** G,      // patterns
    parameter int PS = (TABLE_BINARY != 0) ? P : (P + 1) / 2,      // stored table entries
    parameter int CB = (TABLE_BINARY != 0) ? G : $clog2(3 ** G),   // = formats.ternary.gindex_bits(G)
    parameter int IW = (PS > 1) ? $clog2(PS) : 1
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            bitserial,    // static while beats flow
    input  logic            w_valid,
    output logic            w_ready,
    input  logic [L*CB-1:0] w_codes,
    input  logic [UW-1:0]   w_user,
    output logic            d_valid,
    input  logic            d_ready,
    output logic [L*IW-1:0] d_idx,
    output logic [L-1:0]    d_sgn,
    output logic            d_bad,
    output logic [UW-1:0]   d_user
);
    localparam int ZERO = (TABLE_BINARY != 0) ? 0 : (P - 1) / 2;   // index of the all-zero pattern

    // binary group code -> folded index of the ternary pattern with the same digits (0/1 trits)
    function automatic logic [IW-1:0] bin_to_tern(input logic [G-1:0] b);
        logic [IW-1:0] r;
        int p3;
        r = IW'(ZERO);
        p3 = 1;
        for (int i = 0; i < G; i++) begin
            if (b[i]) r = r - IW'(p3);
            p3 = p3 * 3;
        end
        bin_to_tern = r;
    endfunction

    logic [L*IW-1:0] idx;
    logic [L-1:0]    bad, sgn;

    for (genvar l = 0; l < L; l++) begin : g_lane
        logic [CB-1:0] code;
        assign code = w_codes[l*CB +: CB];
        if (TABLE_BINARY != 0) begin : g_bin
            // a binary-only table takes bit-serial codes only: the mode input has no effect
            wire unused_mode = bitserial;
            assign idx[l*IW +: IW] = IW'(code);
            assign bad[l] = 1'b0;
            assign sgn[l] = 1'b0;
        end else begin : g_ter
            // the all-zero offset minus sum_i bit_i * 3**i over the low G bits
            logic [IW-1:0] tern_of_bin;
            logic [IW-1:0] mirror;
            assign tern_of_bin = bin_to_tern(code[G-1:0]);
            assign mirror = IW'(CB'(P - 1) - code);   // code > Z: 3**G - 1 - code < PS
            always_comb begin
                if (bitserial) begin
                    idx[l*IW +: IW] = tern_of_bin;
                    bad[l] = 1'b0;
                    sgn[l] = |code[G-1:0];
                end else if (32'(code) >= P) begin
                    idx[l*IW +: IW] = IW'(ZERO);
                    bad[l] = 1'b1;
                    sgn[l] = 1'b0;
                end else if (32'(code) > ZERO) begin
                    idx[l*IW +: IW] = mirror;
                    bad[l] = 1'b0;
                    sgn[l] = 1'b1;
                end else begin
                    idx[l*IW +: IW] = IW'(code);
                    bad[l] = 1'b0;
                    sgn[l] = 1'b0;
                end
            end
        end
    end

    assign w_ready = !d_valid || d_ready;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            d_valid <= 1'b0;
        end else if (w_ready) begin
            d_valid <= w_valid;
        end
    end

    always_ff @(posedge clk) begin
        if (w_valid && w_ready) begin
            d_idx <= idx;
            d_sgn <= sgn;
            d_bad <= |bad;
            d_user <= w_user;
        end
    end
endmodule
