name 'kafka_bootstrap'
maintainer 'kafka-bootstrap developers'
maintainer_email 'dev@kafka-bootstrap.invalid'
license 'Apache-2.0'
description 'Installs kafka-bootstrap with its configuration and enables its units, so that ' \
            'a replaced Kafka broker comes back with its broker id, ENI and volume'
version '0.1.0'
chef_version '>= 16.0'

supports 'debian', '>= 12.0'
supports 'ubuntu', '>= 22.04'
