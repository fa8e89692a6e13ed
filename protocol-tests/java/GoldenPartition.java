// Golden partitioning vectors from Kafka's own Java client, for protocol-tests/tests/golden.rs.
//
// Run: java -cp "$(scripts/kafka classpath)" protocol-tests/java/GoldenPartition.java N1 N2 ... < keys
//
// stdin: one key per line, hex ("." for the empty key). stdout: one line per key:
//   MURMUR2 TO_POSITIVE P(N1) P(N2) ...
// where MURMUR2 is Utils.murmur2(key), TO_POSITIVE is Utils.toPositive(MURMUR2) and P(n) is
// BuiltInPartitioner.partitionForKey(key, n), the partition the Java producer picks.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class GoldenPartition {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String hex = line.trim();
            byte[] key = hex.equals(".") ? new byte[0] : HexFormat.of().parseHex(hex);
            int h = Utils.murmur2(key);
            out.append(h).append(' ').append(Utils.toPositive(h));
            for (String n : args) {
                out.append(' ').append(BuiltInPartitioner.partitionForKey(key, Integer.parseInt(n)));
            }
            out.append('\n');
        }
        System.out.print(out);
        System.out.flush();
    }
}
