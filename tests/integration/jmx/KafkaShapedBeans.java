// MBeans named and shaped like a Kafka broker's (its Yammer metrics as JmxReporter
// registers them: a meter's cumulative `Count`, a gauge's `Value`), in a JVM of a few
// MB that starts in about a second. Run in source-file mode with the JMX exporter's agent:
//   java -javaagent:jmx_prometheus_javaagent.jar=127.0.0.1:PORT:RULES.yml KafkaShapedBeans.java
// It prints "ready" once every bean is registered and exits when its stdin closes.
import java.lang.management.ManagementFactory;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.StandardMBean;

public class KafkaShapedBeans {
    public interface MeterMBean { long getCount(); double getOneMinuteRate(); String getRateUnit(); }
    public interface GaugeMBean { Object getValue(); }

    record Meter(long count) implements MeterMBean {
        public long getCount() { return count; }
        public double getOneMinuteRate() { return count / 60.0; }
        public String getRateUnit() { return "SECONDS"; }
    }

    record Gauge(Object value) implements GaugeMBean {
        public Object getValue() { return value; }
    }

    static void register(MBeanServer server, String name, Object bean, Class<?> kind) throws Exception {
        @SuppressWarnings({"unchecked", "rawtypes"})
        StandardMBean mbean = new StandardMBean(bean, (Class) kind);
        server.registerMBean(mbean, new ObjectName(name));
    }

    public static void main(String[] args) throws Exception {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        String topicMetrics = "kafka.server:type=BrokerTopicMetrics,name=";
        for (String meter : new String[] {"MessagesInPerSec", "BytesInPerSec", "BytesOutPerSec"}) {
            register(server, topicMetrics + meter, new Meter(1000), MeterMBean.class);
            register(server, topicMetrics + meter + ",topic=events", new Meter(600), MeterMBean.class);
        }
        register(server, "kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions", new Gauge(0), GaugeMBean.class);
        register(server, "kafka.server:type=ReplicaManager,name=PartitionCount", new Gauge(7), GaugeMBean.class);
        register(server, "kafka.controller:type=KafkaController,name=ActiveControllerCount", new Gauge(1), GaugeMBean.class);
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() != -1) { }
    }
}
