// TLMM weight-code decode: one stream beat of L weight codes in, per code two table indices and two
// signs out (one register stage, valid/ready, sideband d_user rides along).
//
// Tables are split (tlmm_table_builder): a group's low GL = ceil(G/2) weights look up the low table,
// its high GH = floor(G/2) weights the high table. A code's pattern is cut into the two parts' patterns
// (base-3 digits 0..GL-1 and GL..G-1, or bits), and each part's index is decoded on its own.
// A ternary table stores only its lower half (T[3**n - 1 - c] = -T[c]), so a part's ternary index
// c > Z = (3**n - 1)/2 (its all-zero pattern) becomes 3**n - 1 - c with the sign bit set: the lane reads
// the stored entry and negates it. Per lane l, d_idx[l*IW +: IW] = {high index (IWH bits), low index
// (IWL bits)} and d_sgn[2*l +: 2] = {high sign, low sign}.
//
// Code formats (one CB-bit slot per lane, lane l at bits [l*CB +: CB]):
//   ternary (bitserial = 0): the G-index code of edgestream.formats.ternary.pack_gindex,
//     c = sum_i (t_i + 1) * 3**i in [0, 3**G). For G = 5 this is exactly the 1.6 bpw base-3 byte
//     (pack_base3): the low part's code is c % 27, the high part's c / 27. A code >= 3**G is invalid:
//     it decodes to the all-zero pattern and raises d_bad.
//   bit-serial (bitserial = 1): a binary group code of edgestream.tlmm.bit_planes,
//     c = sum_i bit_i * 2**i in the low G bits of the slot (higher slot bits are ignored).
// With ternary tables (TABLE_BINARY = 0) a binary part code maps onto the ternary pattern whose trits
// are its bits, index Z + sum_i bit_i * 3**i, whose entry is sum_i bit_i * a_i: bit-serial weights use
// the very same tables and lanes. Folded, that is index Z - sum_i bit_i * 3**i with the sign set (no
// bit set: Z, the zero entry, sign clear). With binary-only tables (TABLE_BINARY = 1, 2**n entries, no
// symmetry) a part's index is its bits, the sign 0, and bitserial must be 1.
module tlmm_wdecode #(
    parameter int G = 5,
    parameter int L = 16,             // codes per beat (Q * T in the engine)
    parameter int TABLE_BINARY = 0,
    parameter int UW = 1,
    // derived: do not override
    parameter int GL = (G + 1) / 2,
    parameter int GH = G / 2,
    parameter int PL = (TABLE_BINARY != 0) ? 2 ** GL : (3 ** GL + 1) / 2,   // stored entries, low table
    parameter int PH = (TABLE_BINARY != 0) ? 2 ** GH : (3 ** GH + 1) / 2,   // high table
    parameter int CB = (TABLE_BINARY != 0) ? G : $clog2(3 ** G),   // = formats.ternary.gindex_bits(G)
    parameter int IWL = (PL > 1) ? $clog2(PL) : 1,
    parameter int IWH = (PH > 1) ? $clog2(PH) : 1,
    parameter int IW = IWL + IWH
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
    output logic [2*L-1:0]  d_sgn,
    output logic            d_bad,
    output logic [UW-1:0]   d_user
);
    localparam int RL = 3 ** GL;             // ternary patterns of the low part
    localparam int ZL = (RL - 1) / 2;        // their all-zero pattern
    localparam int ZH = (3 ** GH - 1) / 2;

    // binary part code -> folded index of the ternary pattern with the same digits (0/1 trits)
    function automatic logic [IWL-1:0] bin_to_tern(input logic [GL-1:0] b, input int n, input logic [IWL-1:0] z);
        logic [IWL-1:0] r;
        int p3;
        r = z;
        p3 = 1;
        for (int i = 0; i < n; i++) begin
            if (b[i]) r = r - IWL'(p3);
            p3 = p3 * 3;
        end
        bin_to_tern = r;
    endfunction

    logic [L*IW-1:0] idx;
    logic [2*L-1:0]  sgn;
    logic [L-1:0]    bad;

    for (genvar l = 0; l < L; l++) begin : g_lane
        logic [CB-1:0] code;
        assign code = w_codes[l*CB +: CB];
        if (TABLE_BINARY != 0) begin : g_bin
            // a binary-only table takes bit-serial codes only: the mode input has no effect
            wire unused_mode = bitserial;
            assign idx[l*IW +: IW] = {IWH'(code[G-1:GL]), IWL'(code[GL-1:0])};
            assign bad[l] = 1'b0;
            assign sgn[2*l +: 2] = 2'b00;
        end else begin : g_ter
            // the parts' ternary codes: c % 3**GL and c / 3**GL (constant divisor: a small function of
            // the CB code bits, no divider)
            logic [CB-1:0] cl, ch;
            logic [IWL-1:0] bl;   // bit-serial: the folded indices of the parts' 0/1 patterns
            logic [IWH-1:0] bh;
            assign cl = code % CB'(RL);
            assign ch = code / CB'(RL);
            assign bl = bin_to_tern(GL'(code[GL-1:0]), GL, IWL'(ZL));
            assign bh = IWH'(bin_to_tern(GL'(code[G-1:GL]), GH, IWL'(ZH)));
            always_comb begin
                if (bitserial) begin
                    idx[l*IW +: IW] = {bh, bl};
                    bad[l] = 1'b0;
                    sgn[2*l +: 2] = {|code[G-1:GL], |code[GL-1:0]};
                end else if (32'(code) >= 3 ** G) begin
                    idx[l*IW +: IW] = {IWH'(ZH), IWL'(ZL)};
                    bad[l] = 1'b1;
                    sgn[2*l +: 2] = 2'b00;
                end else begin
                    bad[l] = 1'b0;
                    // fold each part onto its stored half: c > Z -> 3**n - 1 - c, negated
                    if (32'(cl) > ZL) begin
                        idx[l*IW +: IWL] = IWL'(CB'(RL - 1) - cl);
                        sgn[2*l] = 1'b1;
                    end else begin
                        idx[l*IW +: IWL] = IWL'(cl);
                        sgn[2*l] = 1'b0;
                    end
                    if (32'(ch) > ZH) begin
                        idx[l*IW + IWL +: IWH] = IWH'(CB'(2 * ZH) - ch);
                        sgn[2*l + 1] = 1'b1;
                    end else begin
                        idx[l*IW + IWL +: IWH] = IWH'(ch);
                        sgn[2*l + 1] = 1'b0;
                    end
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
