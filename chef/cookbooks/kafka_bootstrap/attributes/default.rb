# The package: from the node's configured repositories, or a file built by this repository's
# CPack (`cpack -G DEB`), whose library dependencies must then already be installed.
default['kafka_bootstrap']['package_name'] = 'kafka-bootstrap'
default['kafka_bootstrap']['package_version'] = nil
default['kafka_bootstrap']['package_file'] = nil

# The kafka user and group. Fixed ids, the same as the AMI's (packer/), so a broker's volume
# keeps its owner whichever instance mounts it.
default['kafka_bootstrap']['kafka_user'] = 'kafka'
default['kafka_bootstrap']['kafka_group'] = 'kafka'
default['kafka_bootstrap']['kafka_uid'] = 9092
default['kafka_bootstrap']['kafka_gid'] = 9092
default['kafka_bootstrap']['kafka_home'] = '/var/lib/kafka'

# Units enabled for every boot. kafka.service itself belongs to whatever installs Kafka; the
# package's drop-in makes it require kafka-bootstrap.service.
default['kafka_bootstrap']['units'] = %w(
  kafka-bootstrap.service
  kafka-bootstrap-signal.service
  kafka.service
)

# /etc/kafka-bootstrap/config.json: any key `kafka-bootstrap config --keys` lists. Values that
# differ per cluster or stack (zookeeper_connect, cluster) can go here or, from userdata, in
# /etc/kafka-bootstrap/config.d/50-stack.json, which wins.
default['kafka_bootstrap']['config'] = {
  'kafka_user' => 'kafka',
  'properties_path' => '/etc/kafka/server.properties',
  'mount_point' => '/var/lib/kafka',
  'log_dir' => '/var/lib/kafka/logs',
  'filesystem' => 'xfs',
  'listeners' => 'PLAINTEXT://{ip}:9092',
  'advertised_listeners' => 'PLAINTEXT://{ip}:9092',
}
