// Reads records back with Kafka's own Java consumer and prints them byte for byte, for
// protocol-tests/tests/live.rs.
//
// Run: java -cp "$(scripts/kafka classpath)" protocol-tests/java/ReadBack.java \
//        BOOTSTRAP TOPIC PARTITION:FROM_OFFSET:COUNT...
//
// stdout: COUNT lines per partition (partitions in argument order, records in offset order),
// then "done":
//   r PARTITION OFFSET TIMESTAMP TIMESTAMP_TYPE KEY VALUE [h:HKEY:HVALUE ...]
// Byte strings are hex, "." for empty, "-" for null. Fails after 60 s without all records.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class ReadBack {
    static String text(byte[] b) {
        if (b == null) return "-";
        if (b.length == 0) return ".";
        return HexFormat.of().formatHex(b);
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(8 << 20));
        List<TopicPartition> partitions = new ArrayList<>();
        Map<TopicPartition, Integer> wanted = new HashMap<>();
        Map<TopicPartition, StringBuilder> outs = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            for (int i = 2; i < args.length; i++) {
                String[] f = args[i].split(":");
                TopicPartition tp = new TopicPartition(args[1], Integer.parseInt(f[0]));
                partitions.add(tp);
                wanted.put(tp, Integer.parseInt(f[2]));
                outs.put(tp, new StringBuilder());
            }
            consumer.assign(partitions);
            for (int i = 2; i < args.length; i++) {
                consumer.seek(partitions.get(i - 2), Long.parseLong(args[i].split(":")[1]));
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            int missing = wanted.values().stream().mapToInt(Integer::intValue).sum();
            while (missing > 0) {
                if (System.nanoTime() > deadline) {
                    System.err.println("ReadBack: " + missing + " records missing after 60 s");
                    System.exit(2);
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    int left = wanted.get(tp);
                    if (left == 0) continue;
                    wanted.put(tp, left - 1);
                    missing--;
                    StringBuilder out = outs.get(tp);
                    out.append("r ").append(r.partition()).append(' ').append(r.offset()).append(' ')
                            .append(r.timestamp()).append(' ').append(r.timestampType().name).append(' ')
                            .append(text(r.key())).append(' ').append(text(r.value()));
                    for (Header h : r.headers()) {
                        out.append(" h:").append(text(h.key().getBytes(StandardCharsets.UTF_8)))
                                .append(':').append(text(h.value()));
                    }
                    out.append('\n');
                }
            }
        }
        StringBuilder all = new StringBuilder();
        for (TopicPartition tp : partitions) all.append(outs.get(tp));
        all.append("done\n");
        System.out.print(all);
        System.out.flush();
    }
}
