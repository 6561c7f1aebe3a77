// int32 -> IEEE binary32, round to nearest even (exact for |x| <= 2**24; 0 -> +0). Combinational;
// part of the dequantize stage (es_dequant, docs/numerics.md "Linear layers").
module es_i2f (
    input  logic [31:0] x,
    output logic [31:0] y
);
    logic [31:0] mag, nrm;
    logic [5:0]  lz;
    logic [30:0] body;
    logic        inc;
    always_comb begin
        mag = x[31] ? 32'(-x) : x;
        lz = 6'd32;
        for (int i = 0; i < 32; i++) if (mag[i]) lz = 6'(31 - i);
        nrm = mag << lz[4:0];
        // exponent 158 - lz (value = nrm * 2**(31 - lz - 31)), mantissa nrm[30:8], guard nrm[7]
        body = {8'(8'd158 - {2'd0, lz}), nrm[30:8]};
        inc = nrm[7] && (nrm[8] || nrm[6:0] != 7'd0);
        y = (mag == 32'd0) ? 32'd0 : {x[31], body + 31'(inc)};
    end

    wire unused = &{1'b0, nrm[31]};
endmodule
