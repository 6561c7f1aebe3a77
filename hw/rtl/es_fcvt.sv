// Format conversions with an exact power-of-two scale, y = round(x * 2**k), one rounding to nearest
// even, subnormal results exact (gradual underflow as numpy's casts and ldexp), overflow to inf:
//   op 0 F2D:   binary32 a[31:0] -> binary64 y (exact for k = 0: float64(m) of norm_quant's scale)
//   op 1 D2F:   binary64 a -> binary32 y[31:0] (y[63:32] = 0) (s = float32(...) of norm_quant, o's factor
//               float32(float64(max a) / 32767 / den) of attention)
//   op 2 L2D:   signed int64 a -> binary64 y (float64(S) of rms_factor, float64(den), float64(K))
//   op 3 LDEXP: binary64 a -> binary64 y = ldexp(a, k) (rms_factor's S * 2**(2(e - 15)))
// k = 0 gives the plain conversion. For ops 0 and 2 with k != 0 the single rounding of x * 2**k equals
// ldexp(float64(x), k) whenever that result is normal (rms_factor's case). Finite inputs only.
//
// Ports (fixed): clk, en (every stage advances only when en = 1), op[1:0], a[63:0], k[11:0] (signed),
// y[63:0]. Latency LATENCY = 5 en-cycles.
//
// Stages (one long path each):
//   1. unpack: fields of the source format, or the int64 magnitude (64-bit negation); target exponent
//   2. leading-zero count of the 64-bit significand
//   3. normalizing left shift; exponent minus the count, and the right shift that a subnormal result needs
//   4. the subnormal right shift with sticky bits; guard and sticky at the target's rounding position
//   5. RNE increment carrying into the exponent and on to inf, pack
module es_fcvt (
    input  logic               clk,
    input  logic               en,
    input  logic [1:0]         op,
    input  logic [63:0]        a,
    input  logic signed [11:0] k,
    output logic [63:0]        y
);
    /* verilator lint_off UNUSEDPARAM */
    localparam int LATENCY = 5;
    /* verilator lint_on UNUSEDPARAM */
    localparam logic [1:0] OP_F2D = 2'd0, OP_D2F = 2'd1, OP_L2D = 2'd2;

    // ---- stage 1: value = sig / 2**63 * 2**(et - bias of the target)
    logic [63:0]        sig0;
    logic signed [13:0] base0;
    logic               sgn0;
    always_comb begin
        case (op)
            OP_F2D: begin
                sgn0 = a[31];
                sig0 = {a[30:23] != 8'd0, a[22:0], 40'd0};
                base0 = 14'((a[30:23] == 8'd0) ? 14'sd1 : $signed({6'd0, a[30:23]})) + 14'sd896;
            end
            OP_L2D: begin
                sgn0 = a[63];
                sig0 = a[63] ? -a : a;
                base0 = 14'sd1086;                       // 1023 + 63
            end
            default: begin                               // D2F (to bias 127), LDEXP
                sgn0 = a[63];
                sig0 = {a[62:52] != 11'd0, a[51:0], 11'd0};
                base0 = 14'((a[62:52] == 11'd0) ? 14'sd1 : $signed({3'd0, a[62:52]})) -
                        ((op == OP_D2F) ? 14'sd896 : 14'sd0);
            end
        endcase
    end
    logic               sgn1, dbl1;
    logic [63:0]        sig1;
    logic signed [13:0] et1;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn1 <= sgn0;
            dbl1 <= op != OP_D2F;
            sig1 <= sig0;
            et1 <= base0 + 14'(k);
        end
    end

    // ---- stage 2: leading zeros
    // leading zeros of a 64-bit word (64 for zero) as a tree: 2-bit groups, then five levels that each
    // merge two neighbours with one 2:1 mux per count bit (log depth; a for-loop priority chain maps
    // to a LUT chain as long as the word)
    function automatic logic [6:0] lzc64(input logic [63:0] lzv);
        logic [31:0]      qz1;
        logic [31:0]      qc1;
        logic [15:0]      qz2;
        logic [15:0][1:0] qc2;
        logic [7:0]       qz3;
        logic [7:0][2:0]  qc3;
        logic [3:0]       qz4;
        logic [3:0][3:0]  qc4;
        logic [1:0]       qz5;
        logic [1:0][4:0]  qc5;
        logic [5:0]       qc6;
        for (int i = 0; i < 32; i++) begin
            qz1[i] = !(lzv[2*i+1] | lzv[2*i]);
            qc1[i] = !lzv[2*i+1];
        end
        for (int i = 0; i < 16; i++) begin
            qz2[i] = qz1[2*i+1] & qz1[2*i];
            qc2[i] = qz1[2*i+1] ? {1'b1, qc1[2*i]} : {1'b0, qc1[2*i+1]};
        end
        for (int i = 0; i < 8; i++) begin
            qz3[i] = qz2[2*i+1] & qz2[2*i];
            qc3[i] = qz2[2*i+1] ? {1'b1, qc2[2*i]} : {1'b0, qc2[2*i+1]};
        end
        for (int i = 0; i < 4; i++) begin
            qz4[i] = qz3[2*i+1] & qz3[2*i];
            qc4[i] = qz3[2*i+1] ? {1'b1, qc3[2*i]} : {1'b0, qc3[2*i+1]};
        end
        for (int i = 0; i < 2; i++) begin
            qz5[i] = qz4[2*i+1] & qz4[2*i];
            qc5[i] = qz4[2*i+1] ? {1'b1, qc4[2*i]} : {1'b0, qc4[2*i+1]};
        end
        qc6 = qz5[1] ? {1'b1, qc5[0]} : {1'b0, qc5[1]};
        lzc64 = (qz5[1] & qz5[0]) ? 7'd64 : {1'b0, qc6};
    endfunction
    logic               sgn2, dbl2, zero2;
    logic [63:0]        sig2;
    logic signed [13:0] et2;
    logic [6:0]         lz2;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn2 <= sgn1;
            dbl2 <= dbl1;
            zero2 <= sig1 == 64'd0;
            sig2 <= sig1;
            et2 <= et1;
            lz2 <= lzc64(sig1);
        end
    end

    // ---- stage 3: normalize
    logic signed [13:0] er3;
    always_comb er3 = et2 - 14'(lz2);
    logic               sgn3, dbl3, zero3;
    logic [63:0]        sig3;
    logic signed [13:0] e3;
    logic [5:0]         sh3;
    logic [6:0]         nst3;
    logic signed [13:0] nst;
    // sticky bits of the normalized significand (those under the guard bit): 10 (binary64) or 39
    // (binary32) plus the subnormal shift 1 - er, at most 64
    always_comb begin
        nst = ((dbl2 ? 14'sd11 : 14'sd40) - er3);
        if (er3 >= 14'sd1) nst = dbl2 ? 14'sd10 : 14'sd39;
        else if (nst > 14'sd64) nst = 14'sd64;
    end
    always_ff @(posedge clk) begin
        if (en) begin
            sgn3 <= sgn2;
            dbl3 <= dbl2;
            zero3 <= zero2;
            sig3 <= sig2 << lz2[5:0];
            e3 <= er3;
            nst3 <= 7'(nst);
            // a result below the normal range is shifted to exponent 1 (63: everything sticky)
            if (er3 >= 14'sd1) sh3 <= 6'd0;
            else if (er3 < -14'sd61) sh3 <= 6'd63;
            else sh3 <= 6'(14'sd1 - er3);
        end
    end

    // ---- stage 4: subnormal shift, guard and sticky (from a mask of the normalized significand,
    // beside the shifter)
    logic [127:0] shr;
    logic         sticky;
    always_comb begin
        shr = {sig3, 64'd0} >> sh3;
        sticky = (sig3 & ~(64'hffffffffffffffff << nst3)) != 64'd0;
    end
    logic               sgn4, dbl4, zero4, g4, st4, ovf4;
    logic [51:0]        mant4;
    logic [10:0]        ef4;
    always_ff @(posedge clk) begin
        if (en) begin
            sgn4 <= sgn3;
            dbl4 <= dbl3;
            zero4 <= zero3;
            ovf4 <= e3 >= (dbl3 ? 14'sd2047 : 14'sd255);
            ef4 <= (e3 >= 14'sd1) ? 11'(e3) : 11'd0;
            if (dbl3) begin
                mant4 <= shr[126:75];
                g4 <= shr[74];
                st4 <= sticky;
            end else begin
                mant4 <= {29'd0, shr[126:104]};
                g4 <= shr[103];
                st4 <= sticky;
            end
        end
    end

    // ---- stage 5: round, pack
    logic        inc;
    logic [62:0] body;
    always_comb begin
        inc = g4 && (mant4[0] || st4);
        body = dbl4 ? {ef4, mant4} + 63'(inc) : 63'({ef4[7:0], mant4[22:0]} + 31'(inc));
    end
    always_ff @(posedge clk) begin
        if (en) begin
            if (dbl4) begin
                if (zero4) y <= {sgn4, 63'd0};
                else if (ovf4) y <= {sgn4, 11'h7ff, 52'd0};
                else y <= {sgn4, body};
            end else begin
                if (zero4) y <= {32'd0, sgn4, 31'd0};
                else if (ovf4) y <= {32'd0, sgn4, 8'hff, 23'd0};
                else y <= {32'd0, sgn4, body[30:0]};
            end
        end
    end

    wire unused = &{1'b0, shr[127], shr[73:0]};   // the hidden bit (implied by the exponent); sticky bits
endmodule
