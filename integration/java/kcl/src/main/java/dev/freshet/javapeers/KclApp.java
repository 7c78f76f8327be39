package dev.freshet.javapeers;

import java.io.BufferedOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.services.dynamodb.DynamoDbAsyncClient;
import software.amazon.awssdk.services.dynamodb.model.AttributeDefinition;
import software.amazon.awssdk.services.dynamodb.model.BillingMode;
import software.amazon.awssdk.services.dynamodb.model.CreateTableRequest;
import software.amazon.awssdk.services.dynamodb.model.KeySchemaElement;
import software.amazon.awssdk.services.dynamodb.model.KeyType;
import software.amazon.awssdk.services.dynamodb.model.ResourceInUseException;
import software.amazon.awssdk.services.dynamodb.model.ScalarAttributeType;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.kinesis.common.ConfigsBuilder;
import software.amazon.kinesis.common.InitialPositionInStream;
import software.amazon.kinesis.common.InitialPositionInStreamExtended;
import software.amazon.kinesis.coordinator.Scheduler;
import software.amazon.kinesis.exceptions.ShutdownException;
import software.amazon.kinesis.leases.LeaseManagementConfig;
import software.amazon.kinesis.lifecycle.events.InitializationInput;
import software.amazon.kinesis.lifecycle.events.LeaseLostInput;
import software.amazon.kinesis.lifecycle.events.ProcessRecordsInput;
import software.amazon.kinesis.lifecycle.events.ShardEndedInput;
import software.amazon.kinesis.lifecycle.events.ShutdownRequestedInput;
import software.amazon.kinesis.metrics.NullMetricsFactory;
import software.amazon.kinesis.processor.RecordProcessorCheckpointer;
import software.amazon.kinesis.processor.ShardRecordProcessor;
import software.amazon.kinesis.processor.SingleStreamTracker;
import software.amazon.kinesis.retrieval.KinesisClientRecord;
import software.amazon.kinesis.retrieval.polling.PollingConfig;

/**
 * KclApp is a KCL 3.x application that writes every delivered user record to stdout and
 * checkpoints after each batch. Lines (tab-separated):
 *
 * <pre>
 * REC  worker shard sequence sub-sequence partition-key base64(data)
 * EVT  worker event shard epoch-millis [detail]
 * </pre>
 *
 * where event is init, checkpoint (detail: sequence), lease-lost, shard-ended,
 * shutdown-requested, ready, stopped; and, with --leader-poll-ms above zero, leader and
 * leader-end when the worker's leader decider starts and stops answering that this
 * worker leads (asked as often as that, as KCL's own components ask it). A leader
 * event is written at the first answer that it leads; leader-end (detail: the
 * epoch-millis of the last answer that it led) at the first that it does not, or once
 * the graceful shutdown is done. A batch's REC lines are written and flushed before
 * its checkpoint. SIGTERM (or, with --exit-on-stdin-eof true, the end of stdin) starts
 * KCL's graceful shutdown (final checkpoints).
 */
public final class KclApp {
    private static final PrintStream OUT =
            new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, StandardCharsets.UTF_8);

    private KclApp() {}

    public static void main(String[] args) throws Exception {
        Flags f = new Flags(args, Map.ofEntries(
                Map.entry("worker-id", ""),
                Map.entry("app", ""),
                Map.entry("stream", ""),
                Map.entry("endpoint", ""),
                Map.entry("layout", "single-table"),
                Map.entry("mode", "polling"),
                Map.entry("failover-ms", "10000"),
                Map.entry("shard-sync-ms", "2000"),
                Map.entry("max-cache-misses", "1000"),
                Map.entry("leader-lease-ms", "10000"),
                Map.entry("metrics-report-ms", "30000"),
                Map.entry("idle-read-ms", "200"),
                Map.entry("leader-poll-ms", "0"),
                Map.entry("exit-on-stdin-eof", "false")));
        String worker = f.get("worker-id");
        String app = f.get("app");
        String stream = f.get("stream");
        URI endpoint = URI.create(f.get("endpoint"));
        String layout = f.get("layout");
        String mode = f.get("mode");
        if (!layout.equals("single-table") && !layout.equals("three-table")) {
            throw new IllegalArgumentException("--layout must be single-table or three-table");
        }
        if (!mode.equals("polling") && !mode.equals("fanout")) {
            throw new IllegalArgumentException("--mode must be polling or fanout");
        }

        KinesisAsyncClient kinesis = Clients.kinesis(endpoint);
        DynamoDbAsyncClient dynamo = Clients.dynamo(endpoint);
        if (layout.equals("three-table")) {
            // KCL 3.5 starts a new application in the single-table layout unless the
            // coordinator-state table exists, and then expects the worker-metrics table
            // too: create both to run the three-table layout of KCL 3.0-3.4.
            createTable(dynamo, app + "-CoordinatorState", "key");
            createTable(dynamo, app + "-WorkerMetricStats", "wid");
        }

        ConfigsBuilder cb = new ConfigsBuilder(
                new SingleStreamTracker(stream,
                        InitialPositionInStreamExtended.newInitialPosition(InitialPositionInStream.TRIM_HORIZON)),
                app, kinesis, dynamo, Clients.cloudWatch(endpoint), worker,
                () -> new Processor(worker));

        LeaseManagementConfig lm = cb.leaseManagementConfig()
                .failoverTimeMillis(f.getLong("failover-ms"))
                .shardSyncIntervalMillis(f.getLong("shard-sync-ms"))
                .maxCacheMissesBeforeReload((int) f.getLong("max-cache-misses"))
                .dynamoDbLockBasedLeaderLeaseDurationInMillis(f.getLong("leader-lease-ms"))
                .dynamoDbLockBasedLeaderHeartbeatPeriodInMillis(Math.max(500, f.getLong("leader-lease-ms") / 5));
        lm.workerUtilizationAwareAssignmentConfig()
                .workerMetricsReporterFreqInMillis(f.getLong("metrics-report-ms"));

        var retrieval = cb.retrievalConfig();
        if (mode.equals("polling")) {
            retrieval.retrievalSpecificConfig(new PollingConfig(stream, kinesis)
                    .idleTimeBetweenReadsInMillis(f.getLong("idle-read-ms")));
        }

        Scheduler scheduler = new Scheduler(
                cb.checkpointConfig(),
                cb.coordinatorConfig().parentShardPollIntervalMillis(500),
                lm,
                cb.lifecycleConfig(),
                cb.metricsConfig().metricsFactory(new NullMetricsFactory()),
                cb.processorConfig(),
                retrieval);

        long leaderPoll = f.getLong("leader-poll-ms");
        Leadership leadership = new Leadership(worker);
        if (leaderPoll > 0) {
            Thread t = new Thread(() -> leadership.report(scheduler, leaderPoll), "leader-report");
            t.setDaemon(true);
            t.start();
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                scheduler.startGracefulShutdown().get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                System.err.println("kclapp: graceful shutdown: " + e);
            }
            try {
                stopped.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            leadership.end();
            event(worker, "stopped", "-", "");
        }));

        if (Boolean.parseBoolean(f.get("exit-on-stdin-eof"))) {
            // A test harness holds stdin open: when it dies, stdin ends and so does this
            // worker (gracefully, through the shutdown hook).
            Thread lifeline = new Thread(() -> {
                try {
                    while (System.in.read() >= 0) {
                        // discard
                    }
                } catch (java.io.IOException ignored) {
                    // treated as the end of stdin
                }
                System.exit(0);
            }, "stdin-lifeline");
            lifeline.setDaemon(true);
            lifeline.start();
        }
        event(worker, "ready", "-", layout + "/" + mode);
        scheduler.run();
        stopped.countDown();
    }

    /**
     * Leadership asks the scheduler's leader decider whether this worker leads and writes
     * leader and leader-end events when the answer changes.
     */
    static final class Leadership {
        private final String worker;
        private boolean leading;
        private boolean ended;
        private long lastLed;

        Leadership(String worker) {
            this.worker = worker;
        }

        /** report asks every poll millis (once the scheduler has built its decider) until end. */
        void report(Scheduler scheduler, long poll) {
            while (true) {
                try {
                    Thread.sleep(poll);
                } catch (InterruptedException e) {
                    return;
                }
                var decider = scheduler.leaderDecider();
                if (decider == null) {
                    continue;
                }
                long asked = System.currentTimeMillis();
                boolean now;
                try {
                    now = Boolean.TRUE.equals(decider.isLeader(worker));
                } catch (RuntimeException e) {
                    now = false;
                }
                if (!answered(now, asked)) {
                    return;
                }
            }
        }

        /**
         * answered records one answer, to a question asked at epoch-millis asked (a time at
         * which a worker that answered it leads surely led); false once the reports ended.
         */
        private synchronized boolean answered(boolean now, long asked) {
            if (ended) {
                return false;
            }
            if (now) {
                lastLed = asked;
                if (!leading) {
                    event(worker, "leader", "-", "");
                }
            } else if (leading) {
                event(worker, "leader-end", "-", Long.toString(lastLed));
            }
            leading = now;
            return true;
        }

        /** end writes leader-end if the worker still led at its last answer, and stops the reports. */
        synchronized void end() {
            if (leading) {
                event(worker, "leader-end", "-", Long.toString(lastLed));
            }
            leading = false;
            ended = true;
        }
    }

    private static void createTable(DynamoDbAsyncClient dynamo, String name, String key) throws Exception {
        try {
            dynamo.createTable(CreateTableRequest.builder()
                    .tableName(name)
                    .keySchema(KeySchemaElement.builder().attributeName(key).keyType(KeyType.HASH).build())
                    .attributeDefinitions(AttributeDefinition.builder()
                            .attributeName(key).attributeType(ScalarAttributeType.S).build())
                    .billingMode(BillingMode.PAY_PER_REQUEST)
                    .build()).get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (!(e.getCause() instanceof ResourceInUseException)) {
                throw e;
            }
        }
    }

    static void event(String worker, String event, String shard, String detail) {
        String line = "EVT\t" + worker + "\t" + event + "\t" + shard + "\t" + System.currentTimeMillis()
                + (detail.isEmpty() ? "" : "\t" + detail) + "\n";
        synchronized (OUT) {
            OUT.print(line);
            OUT.flush();
        }
    }

    /** Processor handles one shard's records. */
    static final class Processor implements ShardRecordProcessor {
        private final String worker;
        private String shard = "?";

        Processor(String worker) {
            this.worker = worker;
        }

        @Override
        public void initialize(InitializationInput in) {
            shard = in.shardId();
            event(worker, "init", shard, in.extendedSequenceNumber().toString());
        }

        @Override
        public void processRecords(ProcessRecordsInput in) {
            StringBuilder sb = new StringBuilder(in.records().size() * 96);
            Base64.Encoder b64 = Base64.getEncoder();
            for (KinesisClientRecord r : in.records()) {
                ByteBuffer d = r.data().duplicate();
                byte[] data = new byte[d.remaining()];
                d.get(data);
                sb.append("REC\t").append(worker).append('\t').append(shard).append('\t')
                        .append(r.sequenceNumber()).append('\t').append(r.subSequenceNumber()).append('\t')
                        .append(r.partitionKey()).append('\t').append(b64.encodeToString(data)).append('\n');
            }
            synchronized (OUT) {
                OUT.print(sb);
                OUT.flush();
            }
            if (in.records().isEmpty()) {
                return;
            }
            checkpoint(in.checkpointer(), "checkpoint");
        }

        private void checkpoint(RecordProcessorCheckpointer cp, String what) {
            try {
                cp.checkpoint();
                event(worker, what, shard, "");
            } catch (ShutdownException e) {
                event(worker, what + "-failed", shard, "lease lost");
            } catch (Exception e) {
                event(worker, what + "-failed", shard, e.toString().replace('\t', ' ').replace('\n', ' '));
            }
        }

        @Override
        public void leaseLost(LeaseLostInput in) {
            event(worker, "lease-lost", shard, "");
        }

        @Override
        public void shardEnded(ShardEndedInput in) {
            checkpoint(in.checkpointer(), "shard-ended");
        }

        @Override
        public void shutdownRequested(ShutdownRequestedInput in) {
            checkpoint(in.checkpointer(), "shutdown-requested");
        }
    }

}
