// int32 -> IEEE binary32, round to nearest even (exact for |x| <= 2**24; 0 -> +0). Two register
// stages (latency 2, advancing with `en`): magnitude and leading-zero count, then the normalizing
// shift and the RNE increment. Part of the dequantize stage (es_dequant, docs/numerics.md
// "Linear layers").
module es_i2f (
    input  logic        clk,
    input  logic        en,
    input  logic [31:0] x,
    output logic [31:0] y
);
    logic [31:0] mag0;
    logic [5:0]  lz0;
    always_comb begin
        mag0 = x[31] ? 32'(-x) : x;
        lz0 = 6'd32;
        for (int i = 0; i < 32; i++) if (mag0[i]) lz0 = 6'(31 - i);
    end
    logic [31:0] mag1;
    logic [5:0]  lz1;
    logic        sgn1;
    always_ff @(posedge clk) begin
        if (en) begin
            mag1 <= mag0;
            lz1 <= lz0;
            sgn1 <= x[31];
        end
    end

    logic [31:0] nrm;
    logic [30:0] body;
    logic        inc;
    always_comb begin
        nrm = mag1 << lz1[4:0];
        // exponent 158 - lz (value = nrm * 2**(31 - lz - 31)), mantissa nrm[30:8], guard nrm[7]
        body = {8'(8'd158 - {2'd0, lz1}), nrm[30:8]};
        inc = nrm[7] && (nrm[8] || nrm[6:0] != 7'd0);
    end
    always_ff @(posedge clk) begin
        if (en) y <= (mag1 == 32'd0) ? 32'd0 : {sgn1, body + 31'(inc)};
    end

    wire unused = &{1'b0, nrm[31]};
endmodule
