package dev.freshet.javapeers;

import java.net.URI;
import java.time.Duration;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.SdkHttpConfigurationOption;
import software.amazon.awssdk.http.async.SdkAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.cloudwatch.CloudWatchAsyncClient;
import software.amazon.awssdk.services.dynamodb.DynamoDbAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.utils.AttributeMap;

/**
 * Clients builds the AWS SDK v2 clients of the KCL application against one endpoint (the
 * Freshet engine). The engine's certificate is self-signed, so certificate checks are off:
 * these programs only ever talk to a loopback engine in tests.
 */
final class Clients {
    static final StaticCredentialsProvider CREDENTIALS =
            StaticCredentialsProvider.create(AwsBasicCredentials.create("freshet", "freshet"));

    private Clients() {}

    static SdkAsyncHttpClient http(Protocol protocol) {
        return NettyNioAsyncHttpClient.builder()
                .protocol(protocol)
                .maxConcurrency(64)
                .connectionTimeout(Duration.ofSeconds(5))
                .buildWithDefaults(AttributeMap.builder()
                        .put(SdkHttpConfigurationOption.TRUST_ALL_CERTIFICATES, Boolean.TRUE)
                        .build());
    }

    /** kinesis speaks HTTP/2 (SubscribeToShard needs it), as KCL's own client does. */
    static KinesisAsyncClient kinesis(URI endpoint) {
        return KinesisAsyncClient.builder()
                .endpointOverride(endpoint)
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS)
                .httpClient(http(Protocol.HTTP2))
                .build();
    }

    static DynamoDbAsyncClient dynamo(URI endpoint) {
        return DynamoDbAsyncClient.builder()
                .endpointOverride(endpoint)
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS)
                .httpClient(http(Protocol.HTTP1_1))
                .build();
    }

    static CloudWatchAsyncClient cloudWatch(URI endpoint) {
        return CloudWatchAsyncClient.builder()
                .endpointOverride(endpoint)
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS)
                .httpClient(http(Protocol.HTTP1_1))
                .build();
    }
}
