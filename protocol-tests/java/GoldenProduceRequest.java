// Kafka's own Java code serialises a ProduceRequest (header included, no length prefix)
// around record batches we give it, for the golden test of our request encoding.
// Input (stdin), one line per request:
//   VERSION ACKS TIMEOUT_MS CORRELATION_ID CLIENT_ID TOPIC:PARTITION:BATCH_HEX[,TOPIC:PARTITION:BATCH_HEX...]
// Output: one line of hex per request.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.requests.ProduceRequest;
import org.apache.kafka.common.requests.RequestHeader;

public class GoldenProduceRequest {
    public static void main(String[] args) throws Exception {
        HexFormat hex = HexFormat.of();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) continue;
            String[] f = line.trim().split(" ");
            short version = Short.parseShort(f[0]);
            ProduceRequestData data = new ProduceRequestData()
                .setAcks(Short.parseShort(f[1]))
                .setTimeoutMs(Integer.parseInt(f[2]));
            for (String part : f[5].split(",")) {
                String[] p = part.split(":");
                ProduceRequestData.TopicProduceData topic = data.topicData().find(p[0], Uuid.ZERO_UUID);
                if (topic == null) {
                    topic = new ProduceRequestData.TopicProduceData().setName(p[0]);
                    data.topicData().add(topic);
                }
                topic.partitionData().add(new ProduceRequestData.PartitionProduceData()
                    .setIndex(Integer.parseInt(p[1]))
                    .setRecords(MemoryRecords.readableRecords(ByteBuffer.wrap(hex.parseHex(p[2])))));
            }
            ProduceRequest request = new ProduceRequest(data, version);
            RequestHeader header = new RequestHeader(ApiKeys.PRODUCE, version, f[4], Integer.parseInt(f[3]));
            ByteBuffer out = request.serializeWithHeader(header);
            byte[] bytes = new byte[out.remaining()];
            out.get(bytes);
            System.out.println(hex.formatHex(bytes));
        }
    }
}
