// Attention unit: unsigned integer division q = n / d, r = n % d (restoring, one quotient bit per
// cycle: N cycles after `start`). For the per-instruction figures only: the GQA group size H / KVH
// and the cache capacity KV_SIZE / (layers * KVH * slot bytes). d = 0 gives q = all ones.
module es_attn_div #(
    parameter int N = 32,
    parameter int M = 48
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         start,
    input  logic [N-1:0] n,
    input  logic [M-1:0] d,
    output logic         busy,
    output logic [N-1:0] q,
    output logic [M-1:0] r
);
    logic [$clog2(N + 1)-1:0] k;
    logic [M-1:0] dd;
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            busy <= 1'b0;
        end else if (start) begin
            busy <= 1'b1;
            k <= '0;
            q <= n;
            r <= '0;
            dd <= d;
        end else if (busy) begin
            logic [M:0] rr;
            rr = {r, q[N-1]};
            if (rr >= {1'b0, dd}) begin
                r <= M'(rr - {1'b0, dd});
                q <= {q[N-2:0], 1'b1};
            end else begin
                r <= M'(rr);
                q <= {q[N-2:0], 1'b0};
            end
            k <= k + 1'b1;
            if (32'(k) == N - 1) busy <= 1'b0;
        end
    end
endmodule
