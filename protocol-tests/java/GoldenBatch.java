// Golden record batches from Kafka's own Java client code, for protocol-tests/tests/golden.rs.
//
// Run: java -cp "$(scripts/kafka classpath)" protocol-tests/java/GoldenBatch.java MODE < input
//
// MODE build: stdin holds record sets; for each, prints one line with the hex bytes of the
//   batch that org.apache.kafka.common.record.MemoryRecordsBuilder writes for it.
//     batch CODEC PRODUCER_ID PRODUCER_EPOCH BASE_SEQUENCE
//     r TIMESTAMP KEY VALUE [h:HKEY:HVALUE ...]
//     end
// MODE decode: stdin holds one hex batch per line; for each, Kafka's DefaultRecordBatch
//   checks it (ensureValid: CRC, size) and prints what it reads, in the same text form:
//     batch CODEC PRODUCER_ID PRODUCER_EPOCH BASE_SEQUENCE COUNT LAST_OFFSET MAX_TIMESTAMP
//           LEADER_EPOCH TIMESTAMP_TYPE TRANSACTIONAL CONTROL
//     r OFFSET TIMESTAMP KEY VALUE [h:HKEY:HVALUE ...]
//     end
// Byte strings are hex, "." for empty, "-" for null.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.CompressionType;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.MemoryRecordsBuilder;
import org.apache.kafka.common.record.Record;
import org.apache.kafka.common.record.RecordBatch;
import org.apache.kafka.common.record.TimestampType;

public class GoldenBatch {
    static final HexFormat HEX = HexFormat.of();

    static byte[] bytes(String s) {
        if (s.equals("-")) return null;
        if (s.equals(".")) return new byte[0];
        return HEX.parseHex(s);
    }

    static String text(byte[] b) {
        if (b == null) return "-";
        if (b.length == 0) return ".";
        return HEX.formatHex(b);
    }

    static String text(ByteBuffer b) {
        if (b == null) return "-";
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return text(a);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        if (args.length == 1 && args[0].equals("build")) build(in);
        else if (args.length == 1 && args[0].equals("decode")) decode(in);
        else throw new IllegalArgumentException("usage: GoldenBatch build|decode");
        System.out.flush();
    }

    static void build(BufferedReader in) throws Exception {
        MemoryRecordsBuilder builder = null;
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case "batch" -> {
                    Compression codec = Compression.of(CompressionType.forName(f[1])).build();
                    builder = MemoryRecords.builder(ByteBuffer.allocate(1 << 16), RecordBatch.MAGIC_VALUE_V2,
                            codec, TimestampType.CREATE_TIME, 0L, RecordBatch.NO_TIMESTAMP,
                            Long.parseLong(f[2]), Short.parseShort(f[3]), Integer.parseInt(f[4]), false,
                            RecordBatch.NO_PARTITION_LEADER_EPOCH);
                }
                case "r" -> {
                    List<Header> headers = new ArrayList<>();
                    for (int i = 4; i < f.length; i++) {
                        String[] h = f[i].split(":", -1);
                        byte[] key = bytes(h[1]);
                        headers.add(new RecordHeader(new String(key, StandardCharsets.UTF_8), bytes(h[2])));
                    }
                    builder.append(Long.parseLong(f[1]), bytes(f[2]), bytes(f[3]), headers.toArray(new Header[0]));
                }
                case "end" -> {
                    System.out.println(text(builder.build().buffer()));
                    builder = null;
                }
                default -> throw new IllegalArgumentException("bad line: " + line);
            }
        }
    }

    static void decode(BufferedReader in) throws Exception {
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            MemoryRecords records = MemoryRecords.readableRecords(ByteBuffer.wrap(HEX.parseHex(line.trim())));
            for (RecordBatch batch : records.batches()) {
                batch.ensureValid();
                System.out.println("batch " + batch.compressionType().name + " " + batch.producerId() + " "
                        + batch.producerEpoch() + " " + batch.baseSequence() + " " + batch.countOrNull() + " "
                        + batch.lastOffset() + " " + batch.maxTimestamp() + " " + batch.partitionLeaderEpoch() + " "
                        + batch.timestampType().name + " " + batch.isTransactional() + " " + batch.isControlBatch());
                for (Record r : batch) {
                    r.ensureValid();
                    StringBuilder s = new StringBuilder("r " + r.offset() + " " + r.timestamp() + " "
                            + text(r.key()) + " " + text(r.value()));
                    for (Header h : r.headers()) {
                        s.append(" h:").append(text(h.key().getBytes(StandardCharsets.UTF_8)))
                                .append(":").append(text(h.value()));
                    }
                    System.out.println(s);
                }
                System.out.println("end");
            }
        }
    }
}
