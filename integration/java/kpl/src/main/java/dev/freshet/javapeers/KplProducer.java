package dev.freshet.javapeers;

import com.amazonaws.auth.AWSStaticCredentialsProvider;
import com.amazonaws.auth.BasicAWSCredentials;
import com.amazonaws.services.kinesis.producer.Attempt;
import com.amazonaws.services.kinesis.producer.KinesisProducer;
import com.amazonaws.services.kinesis.producer.KinesisProducerConfiguration;
import com.amazonaws.services.kinesis.producer.UserRecordFailedException;
import com.amazonaws.services.kinesis.producer.UserRecordResult;
import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;

/**
 * KplProducer writes user records through the KPL (its native kinesis_producer process)
 * and reports each record's outcome on stdout, tab-separated:
 *
 * <pre>
 * OK   id shard sequence attempts
 * FAIL id error
 * DONE ok failed wall-millis
 * CPU  jvm-millis native-millis
 * </pre>
 *
 * Records come from --input (lines "partition-key TAB data", id = line number from 0) or
 * from the generator (--records N --keys K --size B): record i has partition key
 * "k-(i mod K)" and data "i:(per-key index):" padded with 'x' to B bytes.
 */
public final class KplProducer {
    private KplProducer() {}

    public static void main(String[] args) throws Exception {
        Flags f = new Flags(args, Map.ofEntries(
                Map.entry("stream", ""),
                Map.entry("host", "127.0.0.1"),
                Map.entry("port", ""),
                Map.entry("region", "us-east-1"),
                Map.entry("input", ""),
                Map.entry("records", "0"),
                Map.entry("keys", "1000"),
                Map.entry("size", "100"),
                Map.entry("aggregation", "true"),
                Map.entry("rate-limit", "150"),
                Map.entry("max-buffered-ms", "100"),
                Map.entry("in-flight", "100000"),
                Map.entry("quiet", "false"),
                Map.entry("temp-dir", "")));
        long port = f.getLong("port");
        String host = f.get("host");
        boolean quiet = Boolean.parseBoolean(f.get("quiet"));

        KinesisProducerConfiguration c = new KinesisProducerConfiguration()
                .setRegion(f.get("region"))
                .setKinesisEndpoint(host).setKinesisPort(port)
                .setStsEndpoint(host).setStsPort(port)
                .setCloudwatchEndpoint(host).setCloudwatchPort(port)
                .setVerifyCertificate(false)
                .setMetricsLevel("none")
                .setLogLevel("warning")
                .setAggregationEnabled(Boolean.parseBoolean(f.get("aggregation")))
                .setRateLimit(f.getLong("rate-limit"))
                .setRecordMaxBufferedTime(f.getLong("max-buffered-ms"))
                .setRecordTtl(120000)
                .setRequestTimeout(10000)
                .setCredentialsProvider(new AWSStaticCredentialsProvider(new BasicAWSCredentials("freshet", "freshet")));
        if (f.optional("temp-dir") != null && !f.optional("temp-dir").isEmpty()) {
            c.setTempDirectory(f.get("temp-dir"));
        }
        KinesisProducer kpl = new KinesisProducer(c);

        PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, StandardCharsets.UTF_8);
        AtomicLong ok = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        Semaphore inFlight = new Semaphore((int) f.getLong("in-flight"));
        String stream = f.get("stream");
        long start = System.nanoTime();

        Source src = f.optional("input") != null && !f.optional("input").isEmpty()
                ? new FileSource(Path.of(f.get("input")))
                : new Generator(f.getLong("records"), (int) f.getLong("keys"), (int) f.getLong("size"));
        long id = 0;
        for (String[] rec = src.next(); rec != null; rec = src.next(), id++) {
            inFlight.acquire();
            final long rid = id;
            ListenableFuture<UserRecordResult> fut = kpl.addUserRecord(stream, rec[0],
                    ByteBuffer.wrap(rec[1].getBytes(StandardCharsets.UTF_8)));
            Futures.addCallback(fut, new FutureCallback<UserRecordResult>() {
                @Override
                public void onSuccess(UserRecordResult r) {
                    inFlight.release();
                    ok.incrementAndGet();
                    if (!quiet) {
                        String line = "OK\t" + rid + "\t" + r.getShardId() + "\t" + r.getSequenceNumber() + "\t" + r.getAttempts().size() + "\n";
                        synchronized (out) {
                            out.print(line);
                        }
                    }
                }

                @Override
                public void onFailure(Throwable t) {
                    inFlight.release();
                    failed.incrementAndGet();
                    String why = t.toString();
                    if (t instanceof UserRecordFailedException) {
                        List<Attempt> as = ((UserRecordFailedException) t).getResult().getAttempts();
                        if (!as.isEmpty()) {
                            Attempt last = as.get(as.size() - 1);
                            why = last.getErrorCode() + ": " + last.getErrorMessage();
                        }
                    }
                    String line = "FAIL\t" + rid + "\t" + why.replace('\t', ' ').replace('\n', ' ') + "\n";
                    synchronized (out) {
                        out.print(line);
                    }
                }
            }, MoreExecutors.directExecutor());
        }
        kpl.flushSync();
        long wall = (System.nanoTime() - start) / 1_000_000;
        long nativeMs = descendantsCpuMillis();
        long jvmMs = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime() / 1_000_000;
        synchronized (out) {
            out.print("DONE\t" + ok.get() + "\t" + failed.get() + "\t" + wall + "\n");
            out.print("CPU\t" + jvmMs + "\t" + nativeMs + "\n");
            out.flush();
        }
        kpl.destroy();
        System.exit(failed.get() == 0 ? 0 : 3);
    }

    /** descendantsCpuMillis sums user+system CPU of this JVM's child processes (the KPL daemon). */
    private static long descendantsCpuMillis() {
        long ticks = 0;
        for (ProcessHandle h : (Iterable<ProcessHandle>) ProcessHandle.current().descendants()::iterator) {
            try {
                String stat = Files.readString(Path.of("/proc/" + h.pid() + "/stat"));
                String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                ticks += Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
            } catch (Exception e) {
                System.err.println("kplproducer: cpu of pid " + h.pid() + ": " + e);
            }
        }
        return ticks * 10; // USER_HZ is 100 on Linux
    }

    interface Source {
        String[] next() throws Exception;
    }

    static final class Generator implements Source {
        private final long n;
        private final int keys;
        private final int size;
        private final long[] perKey;
        private long i;

        Generator(long n, int keys, int size) {
            if (n <= 0 || keys <= 0 || size <= 0) {
                throw new IllegalArgumentException("--records, --keys and --size must be positive");
            }
            this.n = n;
            this.keys = keys;
            this.size = size;
            this.perKey = new long[keys];
        }

        @Override
        public String[] next() {
            if (i >= n) {
                return null;
            }
            int k = (int) (i % keys);
            StringBuilder sb = new StringBuilder(size);
            sb.append(i).append(':').append(perKey[k]++).append(':');
            while (sb.length() < size) {
                sb.append('x');
            }
            i++;
            return new String[] {"k-" + k, sb.toString()};
        }
    }

    static final class FileSource implements Source {
        private final BufferedReader r;

        FileSource(Path p) throws Exception {
            r = Files.newBufferedReader(p, StandardCharsets.UTF_8);
        }

        @Override
        public String[] next() throws Exception {
            String line = r.readLine();
            if (line == null) {
                r.close();
                return null;
            }
            String[] kv = line.split("\t", 2);
            if (kv.length != 2) {
                throw new IllegalArgumentException("input line is not key TAB data: " + Arrays.toString(kv));
            }
            return kv;
        }
    }
}
