// AXI4 write master (one stream): a command (start address, beat count) writes that many beats of
// the input stream as INCR bursts of up to BURST beats (never across 4 KiB). A burst's address is
// sent once its whole data is buffered, then its W beats follow (W never precedes its AW); B
// responses are counted and any non-OKAY one sets `err` (sticky until the next command).
// abort: stop starting bursts and drop buffered data; a burst whose address was sent is completed
// with WSTRB = 0 (AXI forbids an incomplete burst); `busy` falls once every B is back.
module es_axi_wr #(
    parameter int AW = 40,
    parameter int DW = 128,
    parameter int BURST = 16,
    parameter int FIFO = 32,      // power of two, >= BURST
    parameter int SB = $clog2(DW / 8)
) (
    input  logic            clk,
    input  logic            rst_n,
    // a C++ word: only a module linted or built as the top would name a model member after it
    // verilator lint_off SYMRSVDWORD
    input  logic            abort,
    // verilator lint_on SYMRSVDWORD
    input  logic            cmd_valid,
    output logic            cmd_ready,
    input  logic [AW-1:0]   cmd_addr,
    input  logic [31:0]     cmd_beats,
    input  logic            in_valid,
    output logic            in_ready,
    input  logic [DW-1:0]   in_data,
    output logic            aw_valid,
    input  logic            aw_ready,
    output logic [AW-1:0]   aw_addr,
    output logic [7:0]      aw_len,
    output logic            w_valid,
    input  logic            w_ready,
    output logic [DW-1:0]   w_data,
    output logic [DW/8-1:0] w_strb,
    output logic            w_last,
    input  logic            b_valid,
    output logic            b_ready,
    input  logic [1:0]      b_resp,
    output logic            busy,
    output logic            err,
    output logic [1:0]      err_resp
);
    localparam int FAW = $clog2(FIFO);

    logic          active, wbusy;
    logic [AW-1:0] cur;
    logic [31:0]   rem;
    logic [8:0]    wrem;       // W beats left in the current burst
    logic [15:0]   bout;       // bursts whose B is outstanding
    logic [FAW:0]  fcount;
    logic          f_valid;
    logic [DW-1:0] f_data;

    wire [12:0] to4k_bytes = 13'd4096 - {1'b0, cur[11:0]};
    wire [12-SB:0] to4k = to4k_bytes[12:SB];
    logic [8:0] blen;
    always_comb begin
        blen = 9'(BURST);
        if (32'(to4k) < 32'(blen)) blen = 9'(to4k);
        if (rem < 32'(blen)) blen = rem[8:0];
    end

    wire start_burst = active && !abort && rem != 32'd0 && !wbusy && 32'(fcount) >= 32'(blen);
    wire w_fire = w_valid && w_ready;
    wire b_fire = b_valid && b_ready;

    assign cmd_ready = !active && !abort;
    assign b_ready = 1'b1;
    // during an abort the burst in progress is finished with empty strobes
    assign w_valid = wbusy && !aw_valid && (abort || f_valid);
    assign w_data = abort ? '0 : f_data;
    assign w_strb = abort ? '0 : '1;
    assign w_last = wrem == 9'd1;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            active <= 1'b0;
            wbusy <= 1'b0;
            aw_valid <= 1'b0;
            rem <= '0;
            wrem <= '0;
            bout <= '0;
            err <= 1'b0;
            err_resp <= 2'b00;
        end else begin
            if (cmd_valid && cmd_ready) begin
                active <= cmd_beats != 32'd0;
                cur <= cmd_addr;
                rem <= cmd_beats;
                err <= 1'b0;
                err_resp <= 2'b00;
            end else if (abort) begin
                active <= 1'b0;
                rem <= '0;
                err <= 1'b0;
                err_resp <= 2'b00;
            end else if (active && rem == 32'd0 && !wbusy) begin
                active <= 1'b0;
            end

            if (start_burst) begin
                aw_valid <= 1'b1;
                aw_addr <= cur;
                aw_len <= 8'(blen - 9'd1);
                wrem <= blen;
                wbusy <= 1'b1;
                cur <= cur + (AW'(blen) << SB);
                rem <= rem - 32'(blen);
            end else if (aw_valid && aw_ready) begin
                aw_valid <= 1'b0;
            end

            if (w_fire) begin
                wrem <= wrem - 9'd1;
                if (w_last) wbusy <= 1'b0;
            end

            bout <= bout + 16'(start_burst) - 16'(b_fire);
            if (b_fire && b_resp != 2'b00 && !err && !abort) begin
                err <= 1'b1;
                err_resp <= b_resp;
            end
        end
    end

    tlmm_fifo #(.W(DW), .DEPTH(FIFO)) u_fifo (
        .clk, .rst_n(rst_n && !abort),
        .in_valid, .in_ready, .in_data,
        .out_valid(f_valid), .out_ready(w_fire && !abort), .out_data(f_data), .count(fcount)
    );

    assign busy = active || wbusy || aw_valid || bout != '0;

    wire unused = &{1'b0, to4k_bytes[SB-1:0]};
endmodule
